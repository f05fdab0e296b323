//! Locks whose poisoning is ignored. A thread that panics while holding
//! one (a bug) leaves data that every critical section keeps consistent at
//! each step, so the other sessions and queues go on with it rather than
//! panic in turn.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// `lock()` that takes a poisoned mutex as it is.
pub trait Locked<T> {
    fn locked(&self) -> MutexGuard<'_, T>;
    /// `get_mut()`, the same way.
    fn locked_mut(&mut self) -> &mut T;
}

impl<T> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn locked_mut(&mut self) -> &mut T {
        self.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `Condvar::wait` that takes a poisoned mutex as it is.
pub fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}
