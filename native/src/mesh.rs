//! Mesh forwarding (the Python concept `yomo.zipper.mesh.Link`, data half): every frame a
//! local source or function sends is offered to each link's connection to a peer zipper;
//! frames that came from a peer are never offered (loop protection, checked by the
//! zipper). A link never blocks routing: a frame for a link that is down, or whose queue
//! holds `max_queue_bytes`, is dropped and counted. Python keeps the link's connection up
//! (dial, handshake, redial) and hands it over with `Zipper.set_link`. Go: zipper.go.
//!
//! Frames handed to a connection that then dies unanswered are lost too: the link keeps
//! the stream offset where each forwarded frame ends until the peer's transport has
//! acknowledged it (`acked.rs`), and when the connection is replaced it counts those
//! still unacknowledged (`dropped_unacknowledged`), so every frame the link loses is
//! counted (some of them may have arrived: the count is an upper bound).

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::connection::{Shared, OPEN};

/// Forwarded frames whose end offsets a link remembers (past it: the oldest is
/// forgotten, as if acknowledged; far more than a connection's windows hold).
const MAX_INFLIGHT: usize = 1 << 20;

pub struct MeshLink {
    pub name: String,
    pub conn: RwLock<Option<Arc<Shared>>>,
    pub max_queue_bytes: usize,
    pub forwarded: AtomicU64,
    pub bytes_forwarded: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_link_down: AtomicU64,
    pub dropped_unacknowledged: AtomicU64,
    /// End offsets of forwarded frames not yet known to be acknowledged.
    inflight: Mutex<VecDeque<u64>>,
}

impl MeshLink {
    pub fn new(name: String, max_queue_bytes: usize) -> Self {
        MeshLink {
            name,
            conn: RwLock::new(None),
            max_queue_bytes,
            forwarded: AtomicU64::new(0),
            bytes_forwarded: AtomicU64::new(0),
            dropped_queue_full: AtomicU64::new(0),
            dropped_link_down: AtomicU64::new(0),
            dropped_unacknowledged: AtomicU64::new(0),
            inflight: Mutex::new(VecDeque::new()),
        }
    }

    /// Use `conn` from now on (None: the link is down). Frames forwarded on the previous
    /// connection that its peer never acknowledged are counted as dropped.
    pub fn set_conn(&self, conn: Option<Arc<Shared>>) {
        let old = std::mem::replace(&mut *self.conn.write(), conn);
        let mut inflight = self.inflight.lock();
        if let Some(old) = old {
            let floor = old.acked.floor.load(Relaxed);
            let lost = inflight.iter().filter(|end| **end > floor).count();
            self.dropped_unacknowledged.fetch_add(lost as u64, Relaxed);
        }
        inflight.clear();
    }

    /// Queue a frame for the peer, or count why not; never waits.
    pub fn offer(&self, frame: &Bytes) {
        let conn = self.conn.read();
        let Some(shared) = conn.as_ref().filter(|s| s.status() == OPEN) else {
            self.dropped_link_down.fetch_add(1, Relaxed);
            return;
        };
        let backlog = shared.outbox.backlog();
        if backlog > 0 && backlog + frame.len() > self.max_queue_bytes {
            self.dropped_queue_full.fetch_add(1, Relaxed);
            return;
        }
        match shared.outbox.push_at(frame.clone()) {
            Some((_, end)) => {
                self.forwarded.fetch_add(1, Relaxed);
                self.bytes_forwarded.fetch_add(frame.len() as u64, Relaxed);
                let floor = shared.acked.floor.load(Relaxed);
                let mut inflight = self.inflight.lock();
                while inflight.front().is_some_and(|e| *e <= floor) || inflight.len() >= MAX_INFLIGHT {
                    inflight.pop_front();
                }
                inflight.push_back(end);
            }
            None => {
                self.dropped_link_down.fetch_add(1, Relaxed);
            }
        }
    }

    pub fn queued_bytes(&self) -> usize {
        self.conn.read().as_ref().map(|s| s.outbox.backlog()).unwrap_or(0)
    }
}
