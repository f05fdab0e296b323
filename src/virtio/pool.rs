//! The worker pool: the queue thread hands each request to the pool, any
//! idle worker serves it, and requests complete in any order, so one slow
//! request (an fsync, a large read, a lock wait) holds up only itself.
//!
//! The pool also keeps the one ordering 9P asks for: a Tflush is answered
//! only once the request it flushes has been answered. The queue thread
//! submits requests in the order it pops them, so when a Tflush arrives,
//! every request the guest sent before it is known: if one with `oldtag`
//! is still in flight, the Tflush is parked and served by the worker that
//! finishes that request, right after it returned it to the guest.
//!
//! Nothing here allocates per request: the queue and the parking list keep
//! their capacity, and the tag counts are a fixed table.

use crate::sync::Locked;
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// What the pool needs to know of a request.
pub trait Request: Send + 'static {
    /// The request's 9P tag; None when it has no readable header (it is
    /// served, to be returned to the guest, but not tracked).
    fn tag(&self) -> Option<u16>;
    /// For a Tflush: the tag it flushes.
    fn flushes(&self) -> Option<u16>;
}

struct State<J> {
    /// Requests waiting for a worker, oldest first.
    queue: VecDeque<J>,
    /// Requests in flight (submitted, not yet answered) per tag.
    in_flight: Box<[u32]>,
    /// Tflush requests waiting for their `oldtag`: (oldtag, request).
    parked: Vec<(u16, J)>,
    /// Requests submitted and not yet answered, parked ones included.
    pending: usize,
    /// Workers waiting for a request.
    idle: usize,
    /// Of those, how many were signalled and have not woken yet.
    waking: usize,
    /// Someone waits in `drain` for `pending` to fall.
    draining: bool,
    shutdown: bool,
}

struct Shared<J> {
    state: Mutex<State<J>>,
    /// Signalled when a request is queued (or on shutdown).
    work: Condvar,
    /// Signalled when a request is answered while someone drains.
    done: Condvar,
}

impl<J> Shared<J> {
    fn lock(&self) -> MutexGuard<'_, State<J>> {
        self.state.locked()
    }
}

pub struct Pool<J: Request> {
    shared: Arc<Shared<J>>,
    threads: usize,
}

impl<J: Request> Pool<J> {
    /// Starts `threads` workers. Each gets its own state from `worker` (its
    /// reusable buffers) and runs `serve` on the requests it takes; `serve`
    /// must answer the request (return it to the guest) before it returns.
    /// `capacity` is the number of queued requests room is made for.
    pub fn new<W, F>(
        threads: usize,
        capacity: usize,
        mut worker: impl FnMut() -> W,
        serve: F,
    ) -> io::Result<Pool<J>>
    where
        W: Send + 'static,
        F: Fn(&mut W, J) + Send + Sync + 'static,
    {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity),
                in_flight: vec![0; 1 << 16].into_boxed_slice(),
                parked: Vec::with_capacity(16),
                pending: 0,
                idle: 0,
                waking: 0,
                draining: false,
                shutdown: false,
            }),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let serve = Arc::new(serve);
        // From here on, dropping the pool (on an error too) ends the
        // workers started.
        let mut pool = Pool { shared, threads: 0 };
        for i in 0..threads {
            let shared = Arc::clone(&pool.shared);
            let serve = Arc::clone(&serve);
            let state = worker();
            std::thread::Builder::new()
                .name(format!("vu9p-worker-{i}"))
                .spawn(move || run(&shared, state, &*serve))?;
            pool.threads += 1;
        }
        Ok(pool)
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Hands requests to the workers (or, for a Tflush of a request still
    /// in flight, parks it until that request is answered), waking as many
    /// idle workers as there are new requests.
    pub fn submit(&self, requests: impl IntoIterator<Item = J>) {
        let mut st = self.shared.lock();
        let mut queued = 0;
        for request in requests {
            st.pending += 1;
            if let Some(tag) = request.tag() {
                let n = &mut st.in_flight[usize::from(tag)];
                *n = n.wrapping_add(1);
                if let Some(old) = request.flushes() {
                    if old != tag && st.in_flight[usize::from(old)] > 0 {
                        st.parked.push((old, request));
                        continue;
                    }
                }
            }
            st.queue.push_back(request);
            queued += 1;
        }
        // Workers still running pick up the rest when they finish.
        let wake = queued.min(st.idle.saturating_sub(st.waking));
        st.waking += wake;
        drop(st);
        for _ in 0..wake {
            self.shared.work.notify_one();
        }
    }

    /// Whether no request is waiting or being served.
    pub fn is_idle(&self) -> bool {
        self.shared.lock().pending == 0
    }

    /// Waits until every submitted request has been answered.
    ///
    /// A parked Tflush waits for a request in flight, which is being served
    /// unless it is itself a parked Tflush: only a guest flushing flushes
    /// in a cycle can make them wait on each other. When nothing but parked
    /// requests is left, they are served as they are.
    pub fn drain(&self) {
        let mut st = self.shared.lock();
        st.draining = true;
        while st.pending > 0 {
            if st.pending == st.parked.len() {
                while let Some((_, request)) = st.parked.pop() {
                    st.queue.push_back(request);
                }
                st.waking = st.idle;
                self.shared.work.notify_all();
            }
            st = crate::sync::wait(&self.shared.done, st);
        }
        st.draining = false;
    }
}

impl<J: Request> Drop for Pool<J> {
    /// Lets the workers go once the queue is empty. They are not waited
    /// for: one may be blocked in a request for a long time, and the
    /// daemon should not wait for it to exit.
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
    }
}

/// A worker: takes requests until shutdown.
fn run<J: Request, W>(shared: &Shared<J>, mut state: W, serve: &dyn Fn(&mut W, J)) {
    // Tflush requests released by the request just answered.
    let mut released: Vec<J> = Vec::with_capacity(16);
    loop {
        let request = {
            let mut st = shared.lock();
            loop {
                if let Some(request) = st.queue.pop_front() {
                    break request;
                }
                if st.shutdown {
                    return;
                }
                st.idle += 1;
                st = crate::sync::wait(&shared.work, st);
                st.idle -= 1;
                st.waking = st.waking.saturating_sub(1);
            }
        };
        let mut next = Some(request);
        while let Some(request) = next.take().or_else(|| released.pop()) {
            let tag = request.tag();
            serve(&mut state, request);
            let mut st = shared.lock();
            st.pending -= 1;
            if let Some(tag) = tag {
                let n = &mut st.in_flight[usize::from(tag)];
                *n = n.wrapping_sub(1);
                if *n == 0 && !st.parked.is_empty() {
                    let mut i = 0;
                    while i < st.parked.len() {
                        if st.parked[i].0 == tag {
                            released.push(st.parked.swap_remove(i).1);
                        } else {
                            i += 1;
                        }
                    }
                }
            }
            if st.draining {
                shared.done.notify_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::time::Duration;

    /// A request that, when `gate` is set, waits for a message before it
    /// completes; completion is reported on `done`.
    struct Fake {
        tag: u16,
        flushes: Option<u16>,
        gate: Option<Receiver<()>>,
        done: Sender<u16>,
    }

    impl Request for Fake {
        fn tag(&self) -> Option<u16> {
            Some(self.tag)
        }
        fn flushes(&self) -> Option<u16> {
            self.flushes
        }
    }

    fn pool(threads: usize) -> Pool<Fake> {
        Pool::new(
            threads,
            4,
            || (),
            |_: &mut (), r: Fake| {
                if let Some(gate) = &r.gate {
                    gate.recv().unwrap();
                }
                r.done.send(r.tag).unwrap();
            },
        )
        .unwrap()
    }

    fn fake(tag: u16, done: &Sender<u16>) -> Fake {
        Fake {
            tag,
            flushes: None,
            gate: None,
            done: done.clone(),
        }
    }

    fn slow(tag: u16, done: &Sender<u16>) -> (Fake, Sender<()>) {
        let (open, gate) = channel();
        let mut r = fake(tag, done);
        r.gate = Some(gate);
        (r, open)
    }

    fn flush(tag: u16, oldtag: u16, done: &Sender<u16>) -> Fake {
        let mut r = fake(tag, done);
        r.flushes = Some(oldtag);
        r
    }

    const T: Duration = Duration::from_secs(10);
    const SHORT: Duration = Duration::from_millis(200);

    #[test]
    fn a_slow_request_does_not_hold_up_the_others() {
        let pool = pool(2);
        let (done, answers) = channel();
        let (a, open_a) = slow(1, &done);
        pool.submit([a]);
        for tag in 2..50 {
            pool.submit([fake(tag, &done)]);
        }
        for _ in 2..50 {
            assert_ne!(answers.recv_timeout(T).unwrap(), 1);
        }
        open_a.send(()).unwrap();
        assert_eq!(answers.recv_timeout(T).unwrap(), 1);
        pool.drain();
    }

    #[test]
    fn flush_waits_for_the_flushed_request() {
        let pool = pool(2);
        let (done, answers) = channel();
        let (a, open_a) = slow(1, &done);
        pool.submit([a]);
        pool.submit([flush(2, 1, &done)]);
        pool.submit([fake(3, &done)]);
        assert_eq!(answers.recv_timeout(T).unwrap(), 3);
        assert!(
            answers.recv_timeout(SHORT).is_err(),
            "Rflush before the flushed reply"
        );
        open_a.send(()).unwrap();
        assert_eq!(answers.recv_timeout(T).unwrap(), 1);
        assert_eq!(answers.recv_timeout(T).unwrap(), 2);
        pool.drain();
    }

    #[test]
    fn flush_of_a_tag_not_in_flight_is_answered_at_once() {
        let pool = pool(2);
        let (done, answers) = channel();
        let (a, open_a) = slow(1, &done);
        pool.submit([a]);
        pool.submit([flush(2, 7, &done)]);
        pool.submit([flush(3, 3, &done)]);
        let mut got = [
            answers.recv_timeout(T).unwrap(),
            answers.recv_timeout(T).unwrap(),
        ];
        got.sort();
        assert_eq!(got, [2, 3]);
        open_a.send(()).unwrap();
        assert_eq!(answers.recv_timeout(T).unwrap(), 1);
        pool.drain();
    }

    #[test]
    fn a_flush_of_a_flush_waits_for_both() {
        let pool = pool(3);
        let (done, answers) = channel();
        let (a, open_a) = slow(1, &done);
        pool.submit([a]);
        pool.submit([flush(2, 1, &done)]);
        pool.submit([flush(3, 2, &done)]);
        assert!(answers.recv_timeout(SHORT).is_err());
        open_a.send(()).unwrap();
        let got: Vec<u16> = (0..3).map(|_| answers.recv_timeout(T).unwrap()).collect();
        assert_eq!(got, [1, 2, 3]);
        pool.drain();
    }

    #[test]
    fn drain_waits_for_requests_in_flight_and_breaks_flush_cycles() {
        let pool = Arc::new(pool(2));
        let (done, answers) = channel();
        let (a, open_a) = slow(1, &done);
        pool.submit([a]);
        pool.submit([flush(4, 1, &done)]);
        let drained = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || pool.drain())
        };
        std::thread::sleep(SHORT);
        assert!(
            !drained.is_finished(),
            "drain returned with a request in flight"
        );
        open_a.send(()).unwrap();
        drained.join().unwrap();
        let got: Vec<u16> = answers.try_iter().collect();
        assert_eq!(got, [1, 4]);

        // Only a guest reusing a tag in flight can make flushes wait on each
        // other: 8 flushes 7 (a slow request), then a second 7 flushes 8.
        let (c, open_c) = slow(7, &done);
        pool.submit([c]);
        pool.submit([flush(8, 7, &done)]);
        pool.submit([flush(7, 8, &done)]);
        open_c.send(()).unwrap();
        assert_eq!(answers.recv_timeout(T).unwrap(), 7);
        assert!(answers.recv_timeout(SHORT).is_err());
        pool.drain();
        let mut got: Vec<u16> = answers.try_iter().collect();
        got.sort();
        assert_eq!(got, [7, 8]);
    }
}
