//! Write-behind: stretches of files a guest streams out are handed to the
//! disk by a thread of its own, so no request waits on the block layer or
//! the filesystem's journal for them.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::mpsc::{sync_channel, SyncSender};

use crate::server::host;

/// Stretches that may wait for the thread; a further one is dropped (the
/// host kernel writes it back in its own time).
const QUEUE: usize = 16;

enum Job {
    /// Start writing back `window` bytes at this offset of the file (a
    /// duplicate of the fid's open descriptor: the fid may go meanwhile).
    Stretch(OwnedFd, u64),
    /// Answer once every job queued before this one is done.
    Barrier(SyncSender<()>),
}

pub struct WriteBehind {
    /// Bytes per stretch; 0: write-behind is off.
    window: u64,
    queue: Option<SyncSender<Job>>,
}

impl WriteBehind {
    /// Starts the thread, unless `window` is 0.
    pub fn new(window: u64) -> io::Result<WriteBehind> {
        if window == 0 {
            return Ok(WriteBehind {
                window,
                queue: None,
            });
        }
        let (queue, jobs) = sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("write-behind".into())
            .spawn(move || {
                // Ends when the server (the only sender) goes.
                for job in jobs {
                    match job {
                        Job::Stretch(fd, offset) => {
                            // A hint: a failure shows again at the guest's fsync.
                            let _ = host::start_writeback(fd.as_fd(), offset, window);
                        }
                        Job::Barrier(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })?;
        Ok(WriteBehind {
            window,
            queue: Some(queue),
        })
    }

    pub fn window(&self) -> u64 {
        self.window
    }

    /// Queues the stretch at `offset` of `fd`'s file, or drops it if the
    /// thread is that far behind. Never blocks, never allocates.
    pub fn start(&self, fd: BorrowedFd<'_>, offset: u64) {
        let Some(queue) = &self.queue else {
            return;
        };
        // The duplicate shares the open file description, not its locks:
        // POSIX locks live on the lock owners' own descriptors (lock.rs).
        if let Ok(fd) = fd.try_clone_to_owned() {
            let _ = queue.try_send(Job::Stretch(fd, offset));
        }
    }

    /// Waits until every stretch queued so far has been handed to the disk.
    pub fn wait(&self) {
        if let Some(queue) = &self.queue {
            let (done, finished) = sync_channel(1);
            if queue.send(Job::Barrier(done)).is_ok() {
                let _ = finished.recv();
            }
        }
    }
}
