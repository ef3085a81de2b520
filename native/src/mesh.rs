//! Mesh forwarding (the Python concept `yomo.zipper.mesh.Link`, data half): every frame a
//! local source or function sends is offered to each link's connection to a peer zipper;
//! frames that came from a peer are never offered (loop protection, checked by the
//! zipper). A link never blocks routing: a frame for a link that is down, or whose queue
//! holds `max_queue_bytes`, is dropped and counted. Python keeps the link's connection up
//! (dial, handshake, redial) and hands it over with `Zipper.set_link`. Go: zipper.go.

use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Arc,
};

use bytes::Bytes;
use parking_lot::RwLock;

use crate::connection::{Shared, OPEN};

pub struct MeshLink {
    pub name: String,
    pub conn: RwLock<Option<Arc<Shared>>>,
    pub max_queue_bytes: usize,
    pub forwarded: AtomicU64,
    pub bytes_forwarded: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_link_down: AtomicU64,
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
        }
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
        match shared.outbox.push(frame.clone()) {
            Some(_) => {
                self.forwarded.fetch_add(1, Relaxed);
                self.bytes_forwarded.fetch_add(frame.len() as u64, Relaxed);
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
