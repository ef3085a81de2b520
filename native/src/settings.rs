//! QUIC settings (the Python concept `QuicSettings`), read from the Python dataclass by
//! attribute, and turned into quinn's transport configuration.

use std::{sync::Arc, time::Duration};

use pyo3::prelude::*;

/// Which end of a connection a transport configuration is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Zipper,
    Client,
}

/// The fields of `yomo.transport.QuicSettings` the native side uses.
#[derive(Clone, Debug)]
pub struct Settings {
    pub idle_timeout: f64,
    pub keep_alive: f64,
    pub handshake_timeout: f64,
    pub max_stream_data: u64,
    pub max_data: u64,
    pub max_frame_size: usize,
    pub send_high_water: usize,
    pub recv_high_water: usize,
    pub max_connections: usize,
}

impl Settings {
    pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Settings {
            idle_timeout: obj.getattr("idle_timeout")?.extract()?,
            keep_alive: obj.getattr("keep_alive")?.extract()?,
            handshake_timeout: obj.getattr("handshake_timeout")?.extract()?,
            max_stream_data: obj.getattr("max_stream_data")?.extract()?,
            max_data: obj.getattr("max_data")?.extract()?,
            max_frame_size: obj.getattr("max_frame_size")?.extract()?,
            send_high_water: obj.getattr("send_high_water")?.extract()?,
            recv_high_water: obj.getattr("recv_high_water")?.extract()?,
            max_connections: obj.getattr("max_connections")?.extract()?,
        })
    }

    /// The connection's send and receive windows (the larger of the two settings).
    pub fn connection_window(&self) -> u64 {
        self.max_data.max(self.max_stream_data)
    }

    /// The most a connection may receive past the bytes its reader took out of quinn:
    /// quinn's connection receive window (`credit.rs`; `connection_window` stays the
    /// bound past the bytes used). The zipper's starts at `READ_AHEAD` and then follows
    /// the producer's pieces (`credit.rs`); a client's is
    /// the whole window: a Python consumer's process is descheduled more often, and a
    /// capped client window cost Python clients ~12 % of their 1 KiB throughput.
    pub fn read_ahead(&self, side: Side) -> u64 {
        match side {
            Side::Zipper => crate::credit::read_ahead(self.connection_window()),
            Side::Client => self.connection_window(),
        }
    }

    pub fn handshake(&self) -> Duration {
        Duration::from_secs_f64(self.handshake_timeout.max(0.001))
    }

    /// Idle timeout, keep-alive (at most a third of the idle timeout, as on the Python
    /// path), windows, and the peer's streams: a YoMo client opens exactly one
    /// bidirectional stream (Go: pkg/listener/quic/quic.go OpenStream) and a zipper opens
    /// none, so the zipper allows one and a client none. quinn keeps a table entry per
    /// allowed stream from the start (1000, Go's number, cost ~68 KiB per connection).
    pub fn transport(&self, side: Side) -> Arc<quinn::TransportConfig> {
        let mut t = quinn::TransportConfig::default();
        let idle = Duration::from_secs_f64(self.idle_timeout.max(0.001));
        t.max_idle_timeout(quinn::IdleTimeout::try_from(idle).ok());
        let interval = self.keep_alive.min(self.idle_timeout / 3.0);
        t.keep_alive_interval((interval > 0.0).then(|| Duration::from_secs_f64(interval)));
        let stream = quinn::VarInt::from_u64(self.max_stream_data).unwrap_or(quinn::VarInt::MAX);
        // what a connection may receive past the bytes its reader took (`credit.rs`)
        let conn = quinn::VarInt::from_u64(self.read_ahead(side)).unwrap_or(quinn::VarInt::MAX);
        t.stream_receive_window(stream);
        t.receive_window(conn);
        t.send_window(self.max_data.max(self.max_stream_data));
        t.max_concurrent_bidi_streams(match side {
            Side::Zipper => 1u32.into(),
            Side::Client => 0u32.into(),
        });
        t.max_concurrent_uni_streams(0u32.into());
        Arc::new(t)
    }
}
