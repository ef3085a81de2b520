//! The sending half of one connection's stream: a queue of encoded frames bounded by its
//! producers (they wait above the high-water mark, or drop, by policy), and a writer task
//! that hands everything queued to quinn in one call. Frames are `Bytes`, so one frame
//! routed to several connections is shared in the queues; the writer copies runs of
//! small ones together before quinn sees them (`coalesce`), large ones stay shared.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
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

/// Frames smaller than this are copied together before quinn sees them (`coalesce`).
const SMALL: usize = 16 * 1024;
/// The most bytes one copied-together chunk holds.
const MERGED: usize = 64 * 1024;

/// Copy runs of small frames together, up to `MERGED` bytes each; larger frames pass as
/// they are (shared, not copied). quinn keeps every chunk written to a stream as one
/// entry of its send buffer until the peer acknowledges it and finds the bytes of each
/// packet it builds by walking those entries from the oldest (quinn-proto 0.11
/// `SendBuffer::get`): with a frame per entry the walk grows with the frames in flight,
/// and was 4.5 % of the zipper's CPU routing 1 KiB frames from a Go source (1.1 % with
/// this; perf, docs/transport.md). One copy of a small frame costs less than that walk.
fn coalesce(batch: Vec<Bytes>) -> Vec<Bytes> {
    if batch.len() < 2 {
        return batch;
    }
    let mut out = Vec::with_capacity(batch.len().min(16));
    let mut run: Vec<Bytes> = Vec::new();
    let mut run_bytes = 0;
    let flush = |run: &mut Vec<Bytes>, run_bytes: &mut usize, out: &mut Vec<Bytes>| {
        match run.len() {
            0 => {}
            1 => out.push(run.pop().expect("one chunk")),
            _ => {
                let mut merged = BytesMut::with_capacity(*run_bytes);
                for chunk in run.drain(..) {
                    merged.extend_from_slice(&chunk);
                }
                out.push(merged.freeze());
            }
        }
        *run_bytes = 0;
    };
    for chunk in batch {
        if chunk.len() >= SMALL {
            flush(&mut run, &mut run_bytes, &mut out);
            out.push(chunk);
            continue;
        }
        if run_bytes + chunk.len() > MERGED {
            flush(&mut run, &mut run_bytes, &mut out);
        }
        run_bytes += chunk.len();
        run.push(chunk);
    }
    flush(&mut run, &mut run_bytes, &mut out);
    out
}

/// Move frames from `outbox` onto `send` until the outbox closes or the stream fails;
/// `on_progress` runs after every batch with the backlog left.
pub async fn run_writer(
    outbox: &Outbox,
    send: &mut quinn::SendStream,
    mut on_progress: impl FnMut(usize),
) -> Result<(), quinn::WriteError> {
    while let Some(batch) = outbox.take().await {
        let mut batch = coalesce(batch);
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

#[cfg(test)]
mod tests {
    use super::{coalesce, MERGED, SMALL};
    use bytes::Bytes;

    fn frame(n: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; n])
    }

    fn concat(chunks: &[Bytes]) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn small_frames_are_copied_together_in_order_up_to_the_bound() {
        let batch: Vec<Bytes> = (0..200).map(|i| frame(1000 + i, i as u8)).collect();
        let want = concat(&batch);
        let out = coalesce(batch);
        assert_eq!(concat(&out), want, "the same bytes in the same order");
        assert!(out.iter().all(|c| c.len() <= MERGED), "no chunk past the bound");
        // 200 frames of 1,000-1,199 bytes (219,900): 4 chunks of at most 64 KiB
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn large_frames_pass_uncopied_between_runs_of_small_ones() {
        let big = frame(SMALL, 7);
        let batch = vec![frame(10, 1), frame(20, 2), big.clone(), frame(30, 3), frame(SMALL - 1, 4)];
        let want = concat(&batch);
        let out = coalesce(batch);
        assert_eq!(concat(&out), want);
        assert_eq!(out.iter().map(Bytes::len).collect::<Vec<_>>(), vec![30, SMALL, 30 + SMALL - 1]);
        assert_eq!(out[1].as_ptr(), big.as_ptr(), "the large frame is shared, not copied");
    }

    #[test]
    fn a_single_frame_is_passed_as_it_is() {
        let only = frame(100, 9);
        let out = coalesce(vec![only.clone()]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ptr(), only.as_ptr());
        assert!(coalesce(Vec::new()).is_empty());
    }
}
