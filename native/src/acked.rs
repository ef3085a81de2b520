//! How much of a client's stream the zipper's transport has acknowledged, proven from
//! quinn's send window (quinn 0.11 does not expose the acknowledged offset).
//!
//! quinn accepts a write only while the stream data it holds unacknowledged stays below
//! the connection's send window (quinn-proto 0.11.19, `StreamsState::write_limit`:
//! `send_window - buffered_data`). What it holds is the stream from the first byte not
//! yet acknowledged to the last byte written: data acknowledged beyond a gap still
//! counts until the gap is filled (quinn-proto's own test
//! `send_window_retains_selectively_acked_data`), and so does an acknowledged part of
//! the oldest chunk still in its buffer. A client connection sends on this one stream
//! only, so for a trial window X, "an empty write would be accepted" proves
//! `written - acknowledged_prefix < X`.
//!
//! `measure` finds the smallest such X by bisection (trial windows set with the public
//! `set_send_window`, probed with empty writes that change nothing), then restores the
//! window. The result only ever understates the acknowledged prefix: acknowledgements
//! only grow it during a measurement, writes are not made meanwhile (the writer task
//! measures), and when the peer's flow control blocks every trial nothing is learned.
//! Hence a frame is never taken as delivered to the zipper's transport unless it was.
//!
//! Precision: within `PRECISION` bytes plus the acknowledged part of the oldest chunk,
//! which the writer keeps small by handing quinn chunks of at most `CHUNK` bytes.

use std::{
    pin::Pin,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    task::{Context, Poll, Waker},
};

/// Chunks handed to quinn are split to at most this many bytes (see the module docs).
pub const CHUNK: usize = 4096;
/// The bisection stops once the window is known within this many bytes.
const PRECISION: u64 = 64;

/// What the writer knows of its stream: bytes quinn accepted, and the acknowledged
/// prefix proven so far (`floor <= acknowledged <= accepted`).
#[derive(Default)]
pub struct Acked {
    pub accepted: AtomicU64,
    pub floor: AtomicU64,
}

impl Acked {
    /// Raise the proven prefix (never lowers it).
    fn prove(&self, prefix: u64) {
        self.floor.fetch_max(prefix.min(self.accepted.load(Relaxed)), Relaxed);
    }

    /// Measure with trial windows (the writer calls this; it owns `send`). `window` is the
    /// connection's configured send window, restored afterwards.
    pub fn measure(&self, conn: &quinn::Connection, send: &mut quinn::SendStream, window: u64) {
        let accepted = self.accepted.load(Relaxed);
        // quinn never holds more than the send window: a bound that needs no probe
        self.prove(accepted.saturating_sub(window));
        let floor = self.floor.load(Relaxed);
        if floor >= accepted {
            return;
        }
        let mut open = |trial: u64| -> Option<bool> {
            conn.set_send_window(trial);
            let mut cx = Context::from_waker(Waker::noop());
            match Pin::new(&mut *send).poll_write(&mut cx, &[]) {
                Poll::Ready(Ok(_)) => Some(true),
                Poll::Pending => Some(false),
                Poll::Ready(Err(_)) => None, // the connection or stream is gone
            }
        };
        let result = (|| {
            // held: `written - acknowledged + trimmed`, at most `accepted - floor` plus
            // one chunk, and at most the window
            let top = (accepted - floor + CHUNK as u64).min(window) + 1;
            if !open(1)? {
                if !open(top)? {
                    return None; // blocked by the peer's flow control: nothing to learn
                }
                let (mut closed, mut opened) = (1, top);
                while opened - closed > PRECISION {
                    let mid = closed + (opened - closed) / 2;
                    if open(mid)? {
                        opened = mid;
                    } else {
                        closed = mid;
                    }
                }
                return Some(opened); // held < opened
            }
            Some(1) // nothing held: everything accepted was acknowledged
        })();
        conn.set_send_window(window);
        if let Some(opened) = result {
            self.prove((accepted + 1).saturating_sub(opened));
        }
    }
}
