//! The sending half of one connection's stream: a queue of encoded frames bounded by its
//! producers (they wait above the high-water mark, or drop, by policy), and a writer task
//! that hands everything queued to quinn in one call. Frames are `Bytes`, so one frame
//! routed to several connections is shared, not copied.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    chunks: VecDeque<Bytes>,
    queued: usize,
    writing: usize,
    closed: bool,
    writer_idle: bool,
    /// Bytes ever queued: the stream offset after the last frame.
    total: u64,
}

pub struct Outbox {
    state: Mutex<State>,
    wake_writer: Notify,
    room: Notify,
    /// Producers waiting for room are woken once the backlog is at or below this.
    low_water: usize,
}

impl Outbox {
    pub fn new(low_water: usize) -> Self {
        Outbox { state: Mutex::new(State::default()), wake_writer: Notify::new(), room: Notify::new(), low_water }
    }

    /// Queue a frame; returns the backlog after it, or None once closed.
    pub fn push(&self, frame: Bytes) -> Option<usize> {
        self.push_at(frame).map(|(backlog, _)| backlog)
    }

    /// Queue a frame; returns the backlog after it and the stream offset where it ends,
    /// or None once closed.
    pub fn push_at(&self, frame: Bytes) -> Option<(usize, u64)> {
        let wake;
        let backlog;
        let end;
        {
            let mut s = self.state.lock();
            if s.closed {
                return None;
            }
            s.queued += frame.len();
            s.total += frame.len() as u64;
            end = s.total;
            s.chunks.push_back(frame);
            wake = std::mem::take(&mut s.writer_idle);
            backlog = s.queued + s.writing;
        }
        if wake {
            self.wake_writer.notify_one();
        }
        Some((backlog, end))
    }

    /// Queue frames in order (one lock for all); returns the backlog after them, or None
    /// once closed.
    pub fn push_many(&self, frames: Vec<Bytes>) -> Option<usize> {
        let wake;
        let backlog;
        {
            let mut s = self.state.lock();
            if s.closed {
                return None;
            }
            for frame in frames {
                s.queued += frame.len();
                s.total += frame.len() as u64;
                s.chunks.push_back(frame);
            }
            wake = std::mem::take(&mut s.writer_idle);
            backlog = s.queued + s.writing;
        }
        if wake {
            self.wake_writer.notify_one();
        }
        Some(backlog)
    }

    /// Bytes ever queued (the stream offset after the last frame).
    pub fn total(&self) -> u64 {
        self.state.lock().total
    }

    /// Bytes queued or being handed to quinn: what the peer has not taken yet.
    pub fn backlog(&self) -> usize {
        let s = self.state.lock();
        s.queued + s.writing
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Stop taking frames and let the writer end once the queue is empty.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.wake_writer.notify_one();
        self.room.notify_waiters();
    }

    /// Drop what is queued (the connection is gone).
    pub fn abandon(&self) {
        {
            let mut s = self.state.lock();
            s.closed = true;
            s.chunks.clear();
            s.queued = 0;
        }
        self.wake_writer.notify_one();
        self.room.notify_waiters();
    }

    /// Wait until the backlog is at or below `limit`, or the outbox is closed.
    pub async fn wait_room(&self, limit: usize) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let s = self.state.lock();
                if s.closed || s.queued + s.writing <= limit {
                    return;
                }
            }
            notified.await;
        }
    }

    /// The writer's side: everything queued, or None when closed and empty.
    pub async fn take(&self) -> Option<Vec<Bytes>> {
        loop {
            let notified = self.wake_writer.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.state.lock();
                s.writing = 0;
                if !s.chunks.is_empty() {
                    let batch: Vec<Bytes> = s.chunks.drain(..).collect();
                    s.writing = s.queued;
                    s.queued = 0;
                    return Some(batch);
                }
                if s.closed {
                    return None;
                }
                s.writer_idle = true;
            }
            self.after_write();
            notified.await;
        }
    }

    /// The writer handed a batch to quinn: wake producers waiting for room.
    pub fn after_write(&self) -> usize {
        let backlog = {
            let mut s = self.state.lock();
            s.writing = 0;
            s.queued
        };
        if backlog <= self.low_water {
            self.room.notify_waiters();
        }
        backlog
    }
}

/// Move frames from `outbox` onto `send` until the outbox closes or the stream fails;
/// `on_progress` runs after every batch with the backlog left.
pub async fn run_writer(
    outbox: &Outbox,
    send: &mut quinn::SendStream,
    mut on_progress: impl FnMut(usize),
) -> Result<(), quinn::WriteError> {
    while let Some(mut batch) = outbox.take().await {
        let result = send.write_all_chunks(&mut batch).await;
        let left = outbox.after_write();
        if let Err(e) = result {
            outbox.abandon();
            return Err(e);
        }
        on_progress(left);
    }
    Ok(())
}
