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
//! A reading task that does not run (a loaded machine: its thread descheduled for
//! tens of milliseconds while quinn's drivers run on another) takes nothing out of
//! quinn, whose buffer then fills with whatever the peer may send past the bytes read:
//! a whole window (2 MiB) when the credit was only bounded past the bytes used, enough
//! for more than 1,024 pieces (1 Go bench run in 40 closed so). So on the zipper that
//! is bounded too: the credit never passes the bytes read by more than `ahead`
//! (`read_ahead`: `READ_AHEAD`, 128 KiB, or the window if smaller), the window quinn is
//! configured with and keeps while nothing is held. A client keeps `ahead` at the whole
//! window (`Settings::read_ahead` says why). Within 128 KiB quinn compacts only once
//! it holds 2,048 pieces (64 B each on average, less than one of a Go source's 64 B
//! frames with its header), and more than 1,024 pieces after compaction need 512 kept
//! apart of at least 128 B with runs between them (64 KiB and more; below 64 KiB it
//! cannot happen at all).
//!
//! What quinn's trouble depends on is the number of pieces, not bytes, so the bound
//! past the bytes read follows the size of the peer's pieces (`Pieces`): every chunk
//! quinn hands over is one STREAM frame as it arrived, and `ahead` is
//! `PIECES` (1,024) times their recent average size (each counted at most
//! `MAX_PIECE`, a packet), never below `READ_AHEAD` nor above the window. A peer
//! that sends full packets (a Go source at 1 KiB frames: ~1.1 KiB pieces) gets ~1.1 MiB;
//! one that mixes full and small ones gets less (128 KiB at the least). The average
//! falls at once when a span of small pieces is read and rises by a quarter of the
//! difference per span, so what quinn can buffer unread while the reader does not run
//! is at most 1,024 pieces of the recent average size: half of what makes quinn compact
//! at all, and a peer whose pieces stay at least half that size cannot reach it. Why
//! it matters: at 128 KiB a full-speed Go source at 1 KiB frames ran out of credit
//! about 400 times a second (its DATA_BLOCKED frames) whenever the zipper's process
//! waited a few ms for a core, and lost 16 % of its rate (bench/RESULTS.md, History).
//! A peer that sends big pieces and then small ones into credit granted before
//! closes only its own connection ("too many gaps"); the memory bound is `window`
//! past the bytes used either way.
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

/// The least credit granted past the bytes read from quinn (see the module docs).
pub const READ_AHEAD: u64 = 128 << 10;
/// The credit past the bytes read is at most this many of the peer's pieces (of their
/// recent average size): half of quinn's `COMPACT_THRESHOLD` (2,048), quinn's
/// `MAX_CHUNKS`.
const PIECES: u64 = 1024;
/// A piece is counted at most this size: one packet's STREAM frame (quinn's and
/// quic-go's packets carry at most 1,452 bytes); a larger chunk is one quinn merged.
const MAX_PIECE: u64 = 1500;
/// The peer's pieces are averaged over spans of this many bytes read.
const SPAN: u64 = 64 << 10;

/// The receive window quinn is configured with for a connection `window` (the memory
/// bound): what a connection may receive past the bytes its reader took.
pub fn read_ahead(window: u64) -> u64 {
    window.clamp(1, READ_AHEAD)
}

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

/// The recent average size of the peer's pieces (quinn's chunks as read), which sets
/// how much credit past the bytes read is safe (module docs).
struct Pieces {
    /// The estimate, in bytes.
    average: u64,
    /// The span being counted: bytes (each piece at most `MAX_PIECE`) and pieces.
    bytes: u64,
    count: u64,
}

impl Pieces {
    fn new(average: u64) -> Self {
        Pieces { average, bytes: 0, count: 0 }
    }

    /// One piece of `n` bytes read; returns the new average once a span is complete.
    fn piece(&mut self, n: u64) -> Option<u64> {
        self.bytes += n.clamp(1, MAX_PIECE);
        self.count += 1;
        if self.bytes < SPAN {
            return None;
        }
        let span = self.bytes / self.count;
        (self.bytes, self.count) = (0, 0);
        // down at once, up by a quarter of the difference per span
        self.average = if span <= self.average { span } else { self.average + (span - self.average).div_ceil(4) };
        Some(self.average)
    }
}

struct State {
    /// The configured connection receive window: the most credit past the bytes used.
    window: u64,
    /// The least credit past the bytes read (`Settings::read_ahead`): quinn's window
    /// when the connection starts.
    floor: u64,
    /// The most credit past the bytes read now: `PIECES` recent pieces, at least
    /// `floor`, at most `window`.
    ahead: u64,
    /// The peer's pieces.
    pieces: Pieces,
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
    /// `window`: the connection receive window of the settings (the bound past the
    /// bytes used); `ahead`: the window quinn's transport was configured with
    /// (`Settings::read_ahead`), the bound past the bytes read.
    pub fn new(window: u64, ahead: u64) -> Self {
        Credit { state: Mutex::new(State::new(window, ahead)) }
    }

    /// quinn handed over `n` stream bytes (one chunk: one of the peer's pieces); `held`
    /// of the bytes read are not used yet.
    pub fn read(&self, conn: &quinn::Connection, n: usize, held: usize) {
        let mut s = self.state.lock();
        s.on_read(n as u64);
        s.on_piece(n as u64);
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
    fn new(window: u64, floor: u64) -> Self {
        let floor = floor.clamp(1, window.max(1));
        let pieces = Pieces::new((floor / PIECES).max(1));
        State {
            window,
            floor,
            ahead: floor,
            pieces,
            set: floor,
            debt: 0,
            limit: floor,
            read: 0,
            step: (window / 32).max(1),
        }
    }

    /// One of the peer's pieces was read: the credit past the bytes read follows their
    /// size (applied by the next `fit`).
    fn on_piece(&mut self, n: u64) {
        if let Some(average) = self.pieces.piece(n) {
            self.ahead = (average * PIECES).clamp(self.floor, self.window.max(self.floor));
        }
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

    /// Keep the credit limit at most one window past the bytes used (`read - held`) and
    /// at most `ahead` past the bytes read: once the limit is more than a step past
    /// that, close the window if held bytes are the reason (more than `window - ahead`
    /// and a step held: no read can raise the limit then), or else lower it by the
    /// excess (`ahead` fell: the next reads pay it back, quinn's shrink debt); once the
    /// limit is a step or more short of it, raise the window to reach it. Returns the
    /// window to set in quinn, if it changes; a reader that holds at most
    /// `window - ahead` and a step never changes it while `ahead` stays (quinn keeps
    /// the limit at `ahead` past the bytes read by itself).
    fn fit(&mut self, held: u64) -> Option<u64> {
        let used = self.read.saturating_sub(held) + self.window;
        let target = used.min(self.read + self.ahead);
        if self.limit > target + self.step {
            let w = if used == target { 0 } else { self.set.saturating_sub(self.limit - target) };
            if w < self.set {
                self.set_window(w);
                return Some(w);
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
    use super::{read_ahead, State, MAX_PIECE, PIECES, SPAN};

    const W: u64 = 2 << 20;
    const READ: u64 = 64 << 10;

    /// A peer that always has data sends up to the credit limit; the reader holds
    /// everything for a while, then uses it in pieces, several times over.
    #[test]
    fn held_bytes_never_take_the_credit_past_one_window() {
        let mut s = State::new(W, read_ahead(W));
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
        let a = read_ahead(W);
        assert_eq!((s.set, s.debt, s.limit - used), (a, 0, a));
    }

    /// A reader that does not run for a while takes nothing from quinn, and a peer that
    /// always has data sends up to the credit limit meanwhile, in pieces of one size per
    /// phase: once a span of them is read, what quinn buffers unread is at most `PIECES`
    /// of them (or the floor), at most the window, and at least the floor; then the reader
    /// holds everything: the credit stays within one window (a step and a read) past
    /// the bytes used, however large the pieces made `ahead`.
    #[test]
    fn a_starved_reader_lets_quinn_buffer_at_most_1024_pieces() {
        let floor = read_ahead(W);
        let mut s = State::new(W, floor);
        for &p in &[1200u64, 100, 1452, 400, 40, 1452, 9000, 200] {
            let settled = (PIECES * p.min(MAX_PIECE)).clamp(floor, W);
            let mut read = 0;
            for round in 0..100 {
                let sent = s.limit; // the reader was away: quinn holds all the peer sent
                let unread = sent - s.read;
                assert!(unread <= W && unread + s.step >= floor, "{p} B, round {round}: {unread}");
                if read >= 2 * SPAN {
                    let most = (PIECES * p).max(floor) + s.step;
                    assert!(unread <= most, "{p} B, round {round}: {} pieces unread", unread / p);
                }
                while s.read < sent {
                    let n = p.min(sent - s.read);
                    s.on_read(n);
                    s.on_piece(n);
                    s.fit(0);
                    read += n;
                }
            }
            let ahead = s.limit - s.read;
            assert!(ahead.abs_diff(settled) <= s.step, "{p} B: {ahead} past the bytes read, not {settled}");
        }
        // held: the largest pieces, then nothing used while the peer sends all it may
        let used = s.read;
        for _ in 0..10_000 {
            let n = 1452.min(s.limit - s.read);
            if n == 0 {
                break;
            }
            s.on_read(n);
            s.on_piece(n);
            s.fit(s.read - used);
            assert!(s.limit - used <= W + 2 * READ, "credit past the bytes used");
        }
        assert!(s.limit == s.read && s.read - used <= W + 2 * READ, "held at most a window and a read");
    }

    /// A reader that does not run for a while (a starved task) takes nothing from quinn,
    /// and a peer that always has data sends up to the credit limit meanwhile: what
    /// quinn then buffers unread (`sent - read`) is at most `read_ahead`, whether the
    /// reader holds nothing, everything or is working through what it held; and the
    /// credit is never more than one window, a step and a read past the bytes used.
    /// (No pieces counted here: `ahead` stays at its floor.)
    #[test]
    fn a_reader_that_stops_lets_quinn_buffer_at_most_read_ahead() {
        let a = read_ahead(W);
        const { assert!(128 << 10 < W, "the test's window is above the bound") };
        assert!(a <= 128 << 10, "the bound is below quinn's trouble (credit.rs docs)");
        let mut s = State::new(W, read_ahead(W));
        assert_eq!((s.set, s.limit), (a, a), "the window quinn starts with");
        let (mut used, mut changes) = (0u64, 0);
        for round in 0..200u64 {
            // the reader is away: the peer fills its credit, quinn buffers it
            let sent = s.limit;
            assert!(sent - s.read <= a, "round {round}: quinn holds {} unread", sent - s.read);
            // the reader runs: takes what quinn has, in reads of at most READ
            while s.read < sent {
                let n = (sent - s.read).min(READ);
                s.on_read(n);
                if round < 50 {
                    used = s.read; // uses all it reads; from round 50 on it holds them
                }
                changes += s.fit(s.read - used).is_some() as u32;
                assert!(s.limit - s.read <= a, "round {round}: credit past the bytes read");
                assert!(s.limit - used <= W + 2 * READ, "round {round}: credit past the bytes used");
            }
            if round >= 120 {
                // released: the backlog is used, a piece a round, reads or not
                used = (used + (256 << 10)).min(s.read);
                s.fit(s.read - used);
                assert!(s.limit - s.read <= a, "round {round}: credit past the bytes read");
            }
            match round {
                49 => assert_eq!(changes, 0, "no window change while nothing is held"),
                119 => assert!(s.read - used > W / 2, "the hold took most of the window"),
                _ => {}
            }
        }
        assert_eq!(s.read, used, "the backlog was used");
        s.fit(0);
        assert_eq!((s.set, s.debt, s.limit - s.read), (a, 0, a), "back to normal");
    }
}
