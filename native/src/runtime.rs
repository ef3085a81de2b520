//! The native side's threads: one tokio runtime per process, started on first use, and
//! the waker that tells an asyncio loop "something is ready" through a file descriptor.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    OnceLock,
};

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The runtime, started on first use with `YOMO_NATIVE_THREADS` worker threads, else 2
/// (QUIC work for many connections runs in parallel with the Python thread on a small
/// machine).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    start(2)
}

/// The runtime for a process that serves a zipper (`zipper.rs` calls this before anything
/// else starts it): `YOMO_NATIVE_THREADS`, else one worker per two cores. A zipper's
/// frame passes several tasks (the endpoint, the producer's connection, its reader, the
/// function's writer and connection); with a second worker each hop may wake the other
/// thread (futex, eventfd, a context switch), which cost more than the parallelism gave
/// on 2 cores: 14.4 -> 10.8 µs of zipper CPU per 1 KiB frame with Go clients, 6.0 -> 5.2
/// with Python clients, context switches per frame 0.49 -> 0.16 (docs/transport.md). A
/// process that started it earlier (a client first) keeps what it started.
pub fn zipper_runtime() -> &'static tokio::runtime::Runtime {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    start((cores / 2).max(1))
}

fn start(default_threads: usize) -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        let threads = std::env::var("YOMO_NATIVE_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default_threads);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("yomo-native")
            .enable_all()
            .build()
            .expect("yomo: cannot start the native runtime")
    })
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
