//! The zipper's counters (read by `Zipper.stats()`, `connections()` and the monitor):
//! plain integers updated on the data path and read on demand, so scraping never
//! slows routing. Per-tag counters are capped at `MAX_TAGS` distinct tags; frames of
//! tags past the cap count in the totals and in `tags_overflow`.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

use parking_lot::Mutex;

pub const MAX_TAGS: usize = 4096;

#[derive(Default, Clone, Copy)]
pub struct TagCounters {
    pub frames_in: u64,
    pub bytes_in: u64,
    pub frames_out: u64,
    pub bytes_out: u64,
    pub unobserved: u64,
    pub dropped: u64,
}

#[derive(Default)]
pub struct Stats {
    pub rejections: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub drops: AtomicU64,
    pub unobserved: AtomicU64,
    pub tags_overflow: AtomicU64,
    tags: Mutex<HashMap<u32, TagCounters>>,
}

impl Stats {
    /// One routed frame's effect on its tag, in one lock.
    pub fn record(&self, tag: u32, size: u64, sent: u64, unobserved: bool, dropped: u64) {
        if unobserved {
            self.unobserved.fetch_add(1, Relaxed);
        }
        if dropped > 0 {
            self.drops.fetch_add(dropped, Relaxed);
        }
        let mut tags = self.tags.lock();
        let len = tags.len();
        let c = match tags.get_mut(&tag) {
            Some(c) => c,
            None if len < MAX_TAGS => tags.entry(tag).or_default(),
            None => {
                self.tags_overflow.fetch_add(1, Relaxed);
                return;
            }
        };
        c.frames_in += 1;
        c.bytes_in += size;
        c.frames_out += sent;
        c.bytes_out += sent * size;
        c.unobserved += unobserved as u64;
        c.dropped += dropped;
    }

    /// Frames counted in by `record` that were sent later (the startup hold's).
    pub fn record_late(&self, tag: u32, size: u64, sent: u64, unobserved: u64) {
        self.unobserved.fetch_add(unobserved, Relaxed);
        if let Some(c) = self.tags.lock().get_mut(&tag) {
            c.frames_out += sent;
            c.bytes_out += sent * size;
            c.unobserved += unobserved;
        }
    }

    pub fn tags(&self) -> Vec<(u32, TagCounters)> {
        let mut out: Vec<_> = self.tags.lock().iter().map(|(t, c)| (*t, *c)).collect();
        out.sort_by_key(|(t, _)| *t);
        out
    }
}

/// Diagnostic: with `YOMO_NATIVE_QUIC_STATS=FILE`, one JSON line per closed client
/// connection is appended to FILE: quinn's connection statistics (datagrams and ACK
/// frames each way, packets sent and declared lost, congestion events, the congestion
/// window and RTT at the close). Read once; off (and free) without the variable.
pub fn log_quic_stats(number: u64, client_type: u8, conn: &quinn::Connection) {
    static PATH: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let Some(path) = PATH.get_or_init(|| std::env::var_os("YOMO_NATIVE_QUIC_STATS").map(Into::into)) else {
        return;
    };
    let s = conn.stats();
    let p = &s.path;
    let line = format!(
        concat!(
            "{{\"number\":{},\"client_type\":{},\"udp_tx\":{},\"udp_tx_ios\":{},\"udp_rx\":{},",
            "\"acks_tx\":{},\"acks_rx\":{},\"stream_tx\":{},\"sent_packets\":{},\"lost_packets\":{},",
            "\"lost_bytes\":{},\"congestion_events\":{},\"cwnd\":{},\"rtt_us\":{},\"min_rtt_us\":{},",
            "\"mtu\":{},\"black_holes\":{}}}\n"
        ),
        number,
        client_type,
        s.udp_tx.datagrams,
        s.udp_tx.ios,
        s.udp_rx.datagrams,
        s.frame_tx.acks,
        s.frame_rx.acks,
        s.frame_tx.stream,
        p.sent_packets,
        p.lost_packets,
        p.lost_bytes,
        p.congestion_events,
        p.cwnd,
        p.rtt.as_micros(),
        p.min_rtt.as_micros(),
        p.current_mtu,
        p.black_holes_detected,
    );
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}
