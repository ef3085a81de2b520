//! Receive credit counted where frames are used, not where quinn's stream is read.
//!
//! Why: quinn keeps a stream's received-but-unread data as a heap of pieces, one per
//! STREAM frame as it arrived, and closes the connection with `INTERNAL_ERROR: too many
//! gaps in stream buffer` when a compaction pass leaves more than 1,024 pieces
//! (quinn-proto 0.11.19, `Assembler`: `MAX_CHUNKS`, checked once 2,048 pieces are held).
//! Compaction merges only pieces smaller than the buffered bytes / 1,024 or poorly
//! filled ones: a well-filled packet's piece at or above that size is kept apart, and so
//! is each run of small pieces between two of them. A peer whose packets mix full and
//! small ones (a Go source writing 64 B frames, a zipper routing frames of two sizes)
//! therefore ends up with more than 1,024 pieces in a window it never reads, although
//! no byte is missing (quinn-rs/quinn issue 2809; fixed after 0.11.19 by pull request
//! 2814). Nothing here waits for that release.
//!
//! What we do instead: the reader takes what quinn has ready into its own queue of
//! quinn's chunks (`Held`) before it uses them, and keeps reading while it cannot use
//! frames (the zipper holding a producer, a client whose inbox is full), so quinn's
//! buffer stays nearly empty; and it gives the peer credit for bytes used, not bytes
//! read: once more than a step (1/32 window) is held, the connection's receive window is
//! lowered (`Connection::set_receive_window`) so that what the peer may send beyond
//! the bytes used stays at one window. As held bytes are used the window opens again.
//!
//! quinn's arithmetic, mirrored exactly (quinn-proto `StreamsState`): the credit limit
//! `limit` rises when the application reads `n` bytes by `n - debt` (`debt` first
//! absorbs the read), when the window is raised by the increase; lowering the window
//! adds the difference to `debt` (granted credit cannot be taken back). With the window
//! at 0, `limit - read == debt`, so no read can raise the limit. Every change of this
//! connection's window goes through here, so the mirror stays exact.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;

/// Stream bytes read from quinn and not yet used: quinn's own chunks, in order.
#[derive(Default)]
pub struct Held {
    chunks: VecDeque<Bytes>,
    bytes: usize,
}

impl Held {
    pub fn push(&mut self, chunk: Bytes) {
        self.bytes += chunk.len();
        self.chunks.push_back(chunk);
    }

    pub fn pop(&mut self) -> Option<Bytes> {
        let chunk = self.chunks.pop_front()?;
        self.bytes -= chunk.len();
        Some(chunk)
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

struct State {
    /// The configured connection receive window.
    window: u64,
    /// The window set in quinn now.
    set: u64,
    /// quinn's shrink debt.
    debt: u64,
    /// The credit limit quinn has granted (its `local_max_data`).
    limit: u64,
    /// Stream bytes read from quinn.
    read: u64,
    /// Reopen the window in steps of at least this many bytes.
    step: u64,
}

/// One connection's receive credit (see the module docs).
pub struct Credit {
    state: Mutex<State>,
}

impl Credit {
    /// `window`: the connection receive window the transport was configured with.
    pub fn new(window: u64) -> Self {
        Credit { state: Mutex::new(State::new(window)) }
    }

    /// quinn handed over `n` stream bytes; `held` of the bytes read are not used yet.
    pub fn read(&self, conn: &quinn::Connection, n: usize, held: usize) {
        let mut s = self.state.lock();
        s.on_read(n as u64);
        if let Some(w) = s.fit(held as u64) {
            apply(conn, w);
        }
    }

    /// `held` bytes read are not used yet (fewer than before: some were used).
    pub fn used(&self, conn: &quinn::Connection, held: usize) {
        let mut s = self.state.lock();
        if let Some(w) = s.fit(held as u64) {
            apply(conn, w);
        }
    }

    /// Make the peer answer: an ack-eliciting MAX_DATA frame (the window raised by one
    /// byte and set back; see `liveness.rs`), without changing the credit by more than
    /// that byte.
    pub fn nudge(&self, conn: &quinn::Connection) {
        let mut s = self.state.lock();
        let w = s.set;
        s.set_window(w + 1);
        apply(conn, w + 1);
        s.set_window(w);
        apply(conn, w);
    }
}

fn apply(conn: &quinn::Connection, w: u64) {
    if let Ok(v) = quinn::VarInt::from_u64(w) {
        conn.set_receive_window(v);
    }
}

impl State {
    fn new(window: u64) -> Self {
        State { window, set: window, debt: 0, limit: window, read: 0, step: (window / 32).max(1) }
    }

    /// quinn-proto `add_read_credits`.
    fn on_read(&mut self, n: u64) {
        self.read += n;
        if n > self.debt {
            self.limit += n - self.debt;
            self.debt = 0;
        } else {
            self.debt -= n;
        }
    }

    /// quinn-proto `set_receive_window`.
    fn set_window(&mut self, w: u64) {
        if w > self.set {
            self.limit += w - self.set;
        } else {
            self.debt += self.set - w;
        }
        self.set = w;
    }

    /// Keep the credit limit at most one window past the bytes used (`read - held`):
    /// once the limit is more than a step past that (more than a step held), close the
    /// window (no read can raise the limit then); once the limit is a step or more short
    /// of it, raise the window to reach it. Returns the window to set in quinn, if it
    /// changes; a reader that holds at most a step never changes it.
    fn fit(&mut self, held: u64) -> Option<u64> {
        let target = self.read.saturating_sub(held) + self.window;
        if self.limit > target + self.step {
            if self.set > 0 {
                self.set_window(0);
                return Some(0);
            }
        } else if self.limit < target {
            let short = target - self.limit;
            if short >= self.step || (held == 0 && self.debt == 0) {
                let w = self.set + short;
                self.set_window(w);
                return Some(w);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::State;

    const W: u64 = 2 << 20;
    const READ: u64 = 64 << 10;

    /// A peer that always has data sends up to the credit limit; the reader holds
    /// everything for a while, then uses it in pieces, several times over.
    #[test]
    fn held_bytes_never_take_the_credit_past_one_window() {
        let mut s = State::new(W);
        let (mut sent, mut used, mut calls) = (0u64, 0u64, 0);
        let mut packet = 0u64;
        for cycle in 0..5 {
            // not held: the reader uses all it reads; quinn's window is never touched
            for _ in 0..3000 {
                let n = (1 + packet % 3 * 600).min(s.limit - sent);
                packet += 1;
                sent += n;
                s.on_read(n);
                used += n;
                if s.fit(0).is_some() {
                    calls += 1;
                }
                assert!(s.limit - used <= W + 2 * READ, "cycle {cycle}");
            }
            if cycle == 0 {
                assert_eq!(calls, 0, "no window change while nothing is held");
            }
            // held: everything read stays held until the peer is out of credit
            while s.limit > sent {
                let n = (s.limit - sent).min(1200);
                sent += n;
                s.on_read(n);
                s.fit(s.read - used);
                assert!(s.limit - used <= W + 2 * READ);
            }
            assert!(s.read - used <= W + 2 * READ, "held at most a window and a read");
            // released: used in 10 KiB pieces while the peer sends into what opens
            while s.read > used {
                if s.limit > sent {
                    let n = (s.limit - sent).min(1200);
                    sent += n;
                    s.on_read(n);
                    s.fit(s.read - used);
                }
                used += (s.read - used).min(10 << 10);
                s.fit(s.read - used);
                assert!(s.limit - used <= W + 2 * READ);
            }
        }
        // back to normal: the full window again, and no debt left once it is paid
        for _ in 0..4000 {
            let n = 1200u64.min(s.limit - sent);
            sent += n;
            s.on_read(n);
            used += n;
            s.fit(0);
        }
        assert_eq!((s.set, s.debt, s.limit - used), (W, 0, W));
    }
}
