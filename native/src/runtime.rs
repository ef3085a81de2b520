//! The native side's threads: one tokio runtime per process, started on first use, and
//! the waker that tells an asyncio loop "something is ready" through a file descriptor.

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    OnceLock,
};

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The runtime, started on first use with `YOMO_NATIVE_THREADS` worker threads, else 2
/// (QUIC work for many connections runs in parallel with the Python thread on a small
/// machine).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    start(2, false)
}

/// The runtime for a process that serves a zipper (`zipper.rs` calls this before anything
/// else starts it): `YOMO_NATIVE_THREADS`, else one worker per two cores. A zipper's
/// frame passes several tasks (the endpoint, the producer's connection, its reader, the
/// function's writer and connection); with a second worker each hop may wake the other
/// thread (futex, eventfd, a context switch), which cost more than the parallelism gave
/// on 2 cores: 14.4 -> 10.8 µs of zipper CPU per 1 KiB frame with Go clients, 6.0 -> 5.2
/// with Python clients, context switches per frame 0.49 -> 0.16 (docs/transport.md). A
/// process that started it earlier (a client first) keeps what it started.
///
/// While it carries a bulk load its threads run under Linux's `SCHED_BATCH` policy
/// (`Sched`), unless `YOMO_NATIVE_SCHED=normal`.
pub fn zipper_runtime() -> &'static tokio::runtime::Runtime {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let adaptive = std::env::var("YOMO_NATIVE_SCHED").map_or(true, |v| v.trim() != "normal");
    start((cores / 2).max(1), adaptive)
}

fn start(default_threads: usize, adaptive: bool) -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        let threads = std::env::var("YOMO_NATIVE_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default_threads);
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads).thread_name("yomo-native").enable_all();
        if adaptive {
            SCHED.adaptive.store(true, Ordering::Relaxed);
            builder.on_thread_unpark(Sched::follow);
        }
        builder.build().expect("yomo: cannot start the native runtime")
    })
}

/// The zipper's scheduling policy: Linux's `SCHED_BATCH` while it carries a bulk load,
/// the normal one otherwise.
///
/// A `SCHED_BATCH` thread is a normal time-sharing thread whose wake-ups do not preempt
/// the task running on a busy core: it runs at that task's next reschedule, or at once
/// on an idle core. With Go clients a frame is a packet; each datagram woke the zipper,
/// which preempted a busy client, handled a few packets and was preempted in turn when
/// its send woke the other client (~12 % of its CPU in the kernel's context switch). As
/// a batch thread it handles what has arrived in larger batches (bench/RESULTS.md
/// History, docs/transport.md). The price is latency on a busy machine: a wake-up may
/// wait up to a scheduler slice (a few ms), so the policy applies only while the load is
/// a bulk one, at least `ENTER` units per second (a frame routed in or out is one unit,
/// each whole 256 bytes of it one more: ~50,000 small frames a second passing through,
/// 10,000 of 1 KiB, or ~13 MB/s), and ends below `LEAVE`. Interactive traffic (10,000
/// 64-byte frames a second through a forwarder: ~40,000 units) keeps the normal policy.
pub struct Sched {
    adaptive: AtomicBool,
    /// Its watcher runs (one per process, however many zippers it serves).
    watching: AtomicBool,
    batch: AtomicBool,
    units: AtomicU64,
}

pub static SCHED: Sched = Sched {
    adaptive: AtomicBool::new(false),
    watching: AtomicBool::new(false),
    batch: AtomicBool::new(false),
    units: AtomicU64::new(0),
};

/// Units per second at which the batch policy starts, and below which it ends.
const ENTER: u64 = 100_000;
const LEAVE: u64 = 70_000;
/// How often the load is measured.
const WINDOW: std::time::Duration = std::time::Duration::from_millis(200);

thread_local! {
    /// The policy this thread runs under (true: batch).
    static APPLIED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Sched {
    /// A frame of `bytes` was routed in (`sent` 0) or out (`sent` copies).
    #[inline]
    pub fn routed(&self, bytes: usize, copies: u64) {
        self.units.fetch_add((1 + (bytes as u64 >> 8)) * copies, Ordering::Relaxed);
    }

    /// Measure the load every `WINDOW` and switch the policy (every zipper spawns this;
    /// the first one runs for the process's life, the others end at once).
    pub async fn watch(&'static self) {
        if !self.adaptive.load(Ordering::Relaxed) || self.watching.swap(true, Ordering::Relaxed) {
            return;
        }
        let mut last = self.units.load(Ordering::Relaxed);
        let mut tick = tokio::time::interval(WINDOW);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = self.units.load(Ordering::Relaxed);
            let rate = (now - last) * 1000 / WINDOW.as_millis() as u64;
            last = now;
            let batch = self.batch.load(Ordering::Relaxed);
            self.batch.store(next_policy(batch, rate), Ordering::Relaxed);
            Self::follow();
        }
    }

    /// The calling worker thread takes the wanted policy if it does not run under it yet
    /// (each worker when it wakes up: tokio's `on_thread_unpark`).
    fn follow() {
        let want = SCHED.batch.load(Ordering::Relaxed);
        APPLIED.with(|applied| {
            if applied.get() != want {
                applied.set(want);
                set_policy(want);
            }
        });
    }
}

/// The policy after a window at `rate` units per second (true: batch).
fn next_policy(batch: bool, rate: u64) -> bool {
    if batch {
        rate >= LEAVE
    } else {
        rate >= ENTER
    }
}

/// Linux: the calling thread to `SCHED_BATCH` or back to `SCHED_OTHER`; elsewhere, or if
/// the kernel refuses, nothing changes.
fn set_policy(batch: bool) {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        let policy = if batch { libc::SCHED_BATCH } else { libc::SCHED_OTHER };
        // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid param.
        let _ = unsafe { libc::sched_setscheduler(0, policy, &param) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = batch;
}

/// Writes one byte to a socket the asyncio loop watches (`loop.add_reader`), at most once
/// until Python re-arms it, so a burst of frames costs one wake-up and no GIL. The waker
/// owns the socket (Python detached it) and closes it when the last task holding it ends,
/// so a late wake-up never writes to a reused descriptor.
pub struct Waker {
    fd: i64,
    armed: AtomicBool,
}

impl Waker {
    pub fn new(fd: i64) -> Self {
        Waker { fd, armed: AtomicBool::new(true) }
    }

    pub fn wake(&self) {
        if self.fd >= 0 && self.armed.swap(false, Ordering::AcqRel) {
            write_byte(self.fd);
        }
    }

    /// Python drained the socket and is about to look at the queues.
    pub fn rearm(&self) {
        self.armed.store(true, Ordering::Release);
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        if self.fd >= 0 {
            close_fd(self.fd);
        }
    }
}

#[cfg(unix)]
fn close_fd(fd: i64) {
    use std::os::fd::{FromRawFd, OwnedFd};
    drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
}

#[cfg(windows)]
fn close_fd(fd: i64) {
    use std::os::windows::io::{FromRawSocket, OwnedSocket};
    drop(unsafe { OwnedSocket::from_raw_socket(fd as u64) });
}

#[cfg(unix)]
fn write_byte(fd: i64) {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let sock = std::mem::ManuallyDrop::new(unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd as i32) });
    let _ = (&*sock).write(&[1u8]); // a full socket already holds a wake-up
}

#[cfg(windows)]
fn write_byte(fd: i64) {
    use std::io::Write;
    use std::os::windows::io::FromRawSocket;
    let sock = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_socket(fd as u64) });
    let _ = (&*sock).write(&[1u8]);
}

#[cfg(test)]
mod tests {
    use super::{next_policy, set_policy, Sched, ENTER, LEAVE, SCHED};
    use std::sync::atomic::Ordering;

    #[test]
    fn batch_from_enter_until_below_leave() {
        assert!(!next_policy(false, ENTER - 1));
        assert!(next_policy(false, ENTER));
        assert!(next_policy(true, LEAVE), "kept between the two bounds");
        assert!(!next_policy(true, LEAVE - 1));
        assert!(!next_policy(false, LEAVE), "not entered between the two bounds");
    }

    #[test]
    fn routed_frames_count_one_unit_and_one_per_256_bytes_each_copy() {
        let s = Sched {
            adaptive: Default::default(),
            watching: Default::default(),
            batch: Default::default(),
            units: Default::default(),
        };
        s.routed(64, 1);
        s.routed(1024, 3);
        s.routed(100, 0);
        assert_eq!(s.units.load(Ordering::Relaxed), 1 + 3 * 5);
    }

    /// The kernel's view of the calling thread's policy.
    #[cfg(target_os = "linux")]
    fn policy() -> i32 {
        unsafe { libc::sched_getscheduler(0) }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_follows_the_wanted_policy_and_back() {
        std::thread::spawn(|| {
            assert_eq!(policy(), libc::SCHED_OTHER);
            set_policy(true);
            assert_eq!(policy(), libc::SCHED_BATCH);
            set_policy(false);
            assert_eq!(policy(), libc::SCHED_OTHER);
            // the process-wide wish, followed by a worker when it wakes (on_thread_unpark)
            SCHED.batch.store(true, Ordering::Relaxed);
            Sched::follow();
            assert_eq!(policy(), libc::SCHED_BATCH);
            SCHED.batch.store(false, Ordering::Relaxed);
            Sched::follow();
            assert_eq!(policy(), libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }
}
