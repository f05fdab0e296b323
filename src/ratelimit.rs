//! Rate-limited warnings: what a peer can trigger at will (a bad descriptor
//! chain, a short request, a refused connection) is logged at most
//! [`PER_SECOND`] times a second per call site; the first warning let
//! through after a suppressed stretch says how many were left out:
//! `crate::warn_limited!("dropping a bad descriptor chain: {e:?}")`.

use crate::sync::Locked;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Warnings of one kind let through per second.
pub const PER_SECOND: u32 = 10;

/// A budget of `per_second` events a second (fixed one-second windows).
pub struct RateLimit {
    per_second: u32,
    state: Mutex<State>,
}

struct State {
    /// Start of the current window (None before the first event).
    window: Option<Instant>,
    /// Events let through in it.
    passed: u32,
    /// Events refused since the last one let through.
    suppressed: u64,
}

impl RateLimit {
    pub const fn new(per_second: u32) -> Self {
        RateLimit {
            per_second,
            state: Mutex::new(State {
                window: None,
                passed: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether an event may be logged now: Some(how many were suppressed
    /// since the last one that was), or None to stay quiet.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    /// [`RateLimit::allow`] at a given time (tests).
    pub fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.locked();
        let elapsed = state
            .window
            .map(|start| now.saturating_duration_since(start));
        if elapsed.is_none_or(|e| e >= Duration::from_secs(1)) {
            state.window = Some(now);
            state.passed = 0;
        }
        if state.passed >= self.per_second {
            state.suppressed += 1;
            return None;
        }
        state.passed += 1;
        Some(std::mem::take(&mut state.suppressed))
    }
}

/// `log::warn!`, at most [`PER_SECOND`] times a second from this call
/// site; after a quiet stretch, one line first says how many were
/// suppressed.
#[macro_export]
macro_rules! warn_limited {
    ($($arg:tt)+) => {{
        static LIMIT: $crate::ratelimit::RateLimit =
            $crate::ratelimit::RateLimit::new($crate::ratelimit::PER_SECOND);
        if ::log::log_enabled!(::log::Level::Warn) {
            if let Some(suppressed) = LIMIT.allow() {
                if suppressed > 0 {
                    ::log::warn!("{suppressed} more warnings like the next were suppressed");
                }
                ::log::warn!($($arg)+);
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_budget_and_the_rest_counted() {
        let limit = RateLimit::new(3);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // 3 let through, the next 997 of the same second refused.
        let passed = (0..1000).filter(|&i| limit.allow_at(ms(i / 2)).is_some());
        assert_eq!(passed.count(), 3);
        // The next second: the first one says how many were left out.
        assert_eq!(limit.allow_at(ms(1000)), Some(997));
        assert_eq!(limit.allow_at(ms(1001)), Some(0));
        assert_eq!(limit.allow_at(ms(1002)), Some(0));
        assert_eq!(limit.allow_at(ms(1003)), None);
        // A quiet spell: all allowed again.
        assert_eq!(limit.allow_at(ms(5000)), Some(1));
    }

    #[test]
    fn a_clock_that_steps_back_does_not_reopen_the_window() {
        let limit = RateLimit::new(1);
        let t0 = Instant::now() + Duration::from_secs(10);
        assert_eq!(limit.allow_at(t0), Some(0));
        assert_eq!(limit.allow_at(t0 - Duration::from_secs(5)), None);
    }
}
