//! Group commit: every write is acknowledged only once it is on disk, but concurrent writers
//! share their fsyncs. A writer that has applied its batch calls [`GroupFlush::durable`]
//! and returns only after a flush that *started after that call* has succeeded; flushes run
//! one at a time, each done by one of the waiting writers on behalf of all who arrived before
//! it started. Under load one fsync then covers many commits, instead of one fsync each in a
//! queue; alone, a writer pays exactly the one flush it paid before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A duration in whole microseconds, for counters.
pub(super) fn micros(took: Duration) -> u64 {
    u64::try_from(took.as_micros()).unwrap_or(u64::MAX)
}

/// Flushes shared between writers; see the module documentation.
#[derive(Default)]
pub(super) struct GroupFlush {
    state: Mutex<State>,
    finished: Condvar,
    /// Flushes run, and the microseconds they took, for [`crate::store::WriteStats`].
    ran: AtomicU64,
    micros: AtomicU64,
}

#[derive(Default)]
struct State {
    /// Flushes started so far; flushes are numbered from 1 in the order they start.
    started: u64,
    /// The number of the last flush that ended, successfully or not.
    ended: u64,
    /// The number of the last flush that succeeded.
    succeeded: u64,
    /// Whether a flush is running now.
    running: bool,
    /// Why the last failed flush failed.
    error: Option<sled::Error>,
}

impl GroupFlush {
    /// Returns once everything written before this call is durable: a flush that started
    /// after the call has succeeded. The caller may run `flush` for everyone waiting; an
    /// error means no such flush succeeded (the flushes tried failed with it).
    pub fn durable(&self, flush: impl Fn() -> sled::Result<()>) -> sled::Result<()> {
        let mut state = self.lock();
        // Any flush numbered `needed` or later starts after our writes, so it covers them.
        let needed = state.started + 1;
        loop {
            if state.succeeded >= needed {
                return Ok(());
            }
            if state.ended >= needed {
                let error = state.error.clone();
                return Err(error.unwrap_or_else(|| {
                    sled::Error::ReportableBug("a flush failed without an error".to_owned())
                }));
            }
            if state.running {
                state = self
                    .finished
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.running = true;
            state.started += 1;
            let number = state.started;
            drop(state);
            let mut ending = Ending {
                group: self,
                number,
                result: Err(sled::Error::ReportableBug("the flush panicked".to_owned())),
            };
            let started = Instant::now();
            ending.result = flush();
            self.ran.fetch_add(1, Ordering::Relaxed);
            self.micros
                .fetch_add(micros(started.elapsed()), Ordering::Relaxed);
            drop(ending);
            state = self.lock();
        }
    }

    /// How many flushes ran, and how long they took in all.
    pub fn done(&self) -> (u64, Duration) {
        let micros = self.micros.load(Ordering::Relaxed);
        (
            self.ran.load(Ordering::Relaxed),
            Duration::from_micros(micros),
        )
    }

    /// How many flushes have been started, to show that writers share them.
    #[cfg(test)]
    pub fn flushes(&self) -> u64 {
        self.lock().started
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Records the end of a flush and wakes the waiters, even when the flush panicked, so that
/// nobody waits forever for a flush that will never end.
struct Ending<'a> {
    group: &'a GroupFlush,
    number: u64,
    result: sled::Result<()>,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        let mut state = self.group.lock();
        state.running = false;
        state.ended = self.number;
        match std::mem::replace(&mut self.result, Ok(())) {
            Ok(()) => state.succeeded = self.number,
            Err(error) => state.error = Some(error),
        }
        drop(state);
        self.group.finished.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Barrier};
    use std::thread;
    use std::time::Duration;

    use super::*;

    /// A disk that makes writes durable only when flushed: a flush makes durable what was
    /// written when it started, and takes a while.
    #[derive(Default)]
    struct SlowDisk {
        written: AtomicU64,
        durable: AtomicU64,
        fail: AtomicBool,
    }

    impl SlowDisk {
        fn write(&self) -> u64 {
            self.written.fetch_add(1, Ordering::SeqCst) + 1
        }

        fn flush(&self) -> sled::Result<()> {
            let covered = self.written.load(Ordering::SeqCst);
            thread::sleep(Duration::from_millis(3));
            if self.fail.load(Ordering::SeqCst) {
                return Err(sled::Error::Unsupported("disk full".to_owned()));
            }
            self.durable.fetch_max(covered, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn no_writer_returns_before_its_write_is_durable_and_writers_share_flushes() {
        const WRITERS: usize = 8;
        const WRITES: usize = 40;
        let group = Arc::new(GroupFlush::default());
        let disk = Arc::new(SlowDisk::default());
        let start = Arc::new(Barrier::new(WRITERS));
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (group, disk, start) = (group.clone(), disk.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for _ in 0..WRITES {
                        let mine = disk.write();
                        group.durable(|| disk.flush()).unwrap();
                        assert!(
                            disk.durable.load(Ordering::SeqCst) >= mine,
                            "acknowledged write {mine} before it was flushed"
                        );
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let writes = (WRITERS * WRITES) as u64;
        assert_eq!(disk.durable.load(Ordering::SeqCst), writes);
        assert!(
            group.flushes() < writes,
            "{} flushes for {writes} writes: none were shared",
            group.flushes()
        );
    }

    #[test]
    fn a_lone_writer_flushes_once_per_write() {
        let group = GroupFlush::default();
        let disk = SlowDisk::default();
        for n in 1..=3 {
            disk.write();
            group.durable(|| disk.flush()).unwrap();
            assert_eq!(disk.durable.load(Ordering::SeqCst), n);
        }
        assert_eq!(group.flushes(), 3);
    }

    #[test]
    fn a_failed_flush_fails_its_writers_and_the_next_flush_can_succeed() {
        let group = GroupFlush::default();
        let disk = SlowDisk::default();
        disk.write();
        disk.fail.store(true, Ordering::SeqCst);
        let err = group.durable(|| disk.flush()).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(disk.durable.load(Ordering::SeqCst), 0);

        disk.fail.store(false, Ordering::SeqCst);
        disk.write();
        group.durable(|| disk.flush()).unwrap();
        assert_eq!(disk.durable.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_flush_that_panics_fails_its_writer_and_blocks_nobody() {
        let group = Arc::new(GroupFlush::default());
        let panicking = {
            let group = group.clone();
            thread::spawn(move || group.durable(|| panic!("flush exploded")))
        };
        assert!(panicking.join().is_err());
        let disk = SlowDisk::default();
        disk.write();
        group.durable(|| disk.flush()).unwrap();
        assert_eq!(disk.durable.load(Ordering::SeqCst), 1);
    }
}
