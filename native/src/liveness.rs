//! Is the peer still there? When it was last heard from, and how to make it answer.
//!
//! quinn counts the datagrams each connection receives (`Connection::stats()`); a
//! `Hearing` remembers when that count last moved, so "silent for" is measured from the
//! last packet of any kind (acknowledgements and PINGs included), never overstated: a
//! change is noticed when it is looked at, so silence is at most a check late.
//!
//! quinn 0.11 has no public PING. `nudge` sends the smallest ack-eliciting frame its
//! public API can: the connection's receive window is raised by one byte (a MAX_DATA
//! frame, which every QUIC peer acknowledges, RFC 9000 section 19.9) and set back (the
//! byte is taken back from the next credit, quinn's "shrink debt"). The Python path
//! sends a PING for the same purpose.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// When a connection's peer was last heard from (see the module docs).
pub struct Hearing {
    seen: Mutex<(u64, Instant)>,
}

impl Hearing {
    pub fn new() -> Self {
        Hearing { seen: Mutex::new((0, Instant::now())) }
    }

    /// How long no datagram has come from the peer (at most the true silence).
    pub fn silent_for(&self, conn: &quinn::Connection) -> Duration {
        let received = conn.stats().udp_rx.datagrams;
        let mut seen = self.seen.lock();
        if received != seen.0 {
            *seen = (received, Instant::now());
        }
        seen.1.elapsed()
    }

    /// Count the peer as heard now (our own threads stalled: silence proves nothing).
    pub fn heard_now(&self, conn: &quinn::Connection) {
        *self.seen.lock() = (conn.stats().udp_rx.datagrams, Instant::now());
    }
}

/// Make the peer answer: an ack-eliciting MAX_DATA frame (see the module docs).
/// `window` is the connection's configured receive window.
pub fn nudge(conn: &quinn::Connection, window: u64) {
    let Ok(up) = quinn::VarInt::from_u64(window.saturating_add(1)) else { return };
    let Ok(back) = quinn::VarInt::from_u64(window) else { return };
    conn.set_receive_window(up);
    conn.set_receive_window(back);
}
