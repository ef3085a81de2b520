//! A client's connection to a zipper (the Python concept `FrameConnection`, native side):
//! dial, then one bidirectional stream carrying YoMo frames both ways. Python sends by
//! appending encoded frames (`send`, any thread, no await); received frames wait in a
//! queue bounded by `recv_high_water` (above it the stream is not read, so QUIC flow
//! control holds the zipper back) and are taken by Python in batches (`take`) when the
//! waker says so. Go: core/client.go (the connection half).

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, OnceLock,
    },
    time::Duration,
};

use bytes::Bytes;
use parking_lot::Mutex;
use pyo3::{
    prelude::*,
    types::{PyBytes, PyList, PyTuple},
};
use tokio::sync::Notify;

use crate::{
    acked::{Acked, CHUNK},
    credit::{Credit, Held},
    liveness::Hearing,
    outbox::Outbox,
    runtime::{runtime, Waker},
    settings::{Settings, Side},
    tls::{client_config, server_name, Tls},
    y3::{self, FrameReader},
};

/// Application error code YoMo closes connections with (Go: core/frame ErrCode 0x13).
pub const CLOSE_CODE: u32 = 0x13;

pub const CONNECTING: u8 = 0;
pub const OPEN: u8 = 1;
pub const CLOSED: u8 = 2;

/// Why a connection ended, as Python reports it.
#[derive(Clone, Debug)]
pub struct Closed {
    pub reason: String,
    pub remote: bool,
    /// "closed", "protocol" (the peer sent bad bytes), or "connect" (dial failed).
    pub kind: &'static str,
}

/// A received frame: DataFrames with their parts located, other frames whole.
pub enum Item {
    Data { frame: Bytes, tag: u32, metadata: std::ops::Range<usize>, payload: std::ops::Range<usize> },
    Other(Bytes),
}

impl Item {
    pub fn size(&self) -> usize {
        64 + match self {
            Item::Data { frame, .. } | Item::Other(frame) => frame.len(),
        }
    }

    pub fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self {
            Item::Data { frame, tag, metadata, payload } => PyTuple::new(
                py,
                [
                    tag.into_pyobject(py)?.into_any(),
                    PyBytes::new(py, &frame[metadata.clone()]).into_any(),
                    PyBytes::new(py, &frame[payload.clone()]).into_any(),
                ],
            )?
            .into_any(),
            Item::Other(frame) => PyBytes::new(py, frame).into_any(),
        })
    }
}

/// Decode a whole frame for Python (or for the zipper's reader).
pub fn item(frame: Bytes, offset: u64) -> Result<Item, y3::ProtoError> {
    if frame[0] & 0x3F == y3::DATA {
        let v = y3::parse_data(&frame, offset)?;
        return Ok(Item::Data { tag: v.tag, metadata: v.metadata, payload: v.payload, frame });
    }
    Ok(Item::Other(frame))
}

/// A DataFrame whose metadata is not a MessagePack map of strings goes to Python whole,
/// as another frame would: Python decodes it and reports the bad metadata to the
/// function's error handler (the frame is skipped, the connection goes on). Every
/// `(tag, metadata, payload)` item Python gets has valid metadata, which it then
/// decodes only when a handler asks for it.
pub fn checked(it: Item) -> Item {
    match it {
        Item::Data { frame, metadata, .. } if crate::metadata::entries(&frame[metadata.clone()]).is_err() => {
            Item::Other(frame)
        }
        it => it,
    }
}

#[derive(Default)]
struct Inbox {
    items: VecDeque<Item>,
    bytes: usize,
}

pub struct Shared {
    pub waker: Waker,
    pub outbox: Outbox,
    inbox: Mutex<Inbox>,
    resume: Notify,
    recv_high: usize,
    status: Mutex<(u8, Option<Closed>)>,
    conn: OnceLock<quinn::Connection>,
    endpoint: OnceLock<quinn::Endpoint>,
    want_writable: Mutex<Option<usize>>,
    /// 0 not asked, 1 finishing, 2 acknowledged, 3 failed.
    finish: Mutex<u8>,
    /// Stream bytes received from the zipper and taken into the inbox's reader.
    received: AtomicU64,
    /// Stream bytes quinn took, and the prefix the zipper's transport acknowledged.
    pub acked: Acked,
    /// Python asks the writer for a fresh `acked` measurement.
    measure: Notify,
    hearing: Hearing,
    /// The configured connection send window (restored after a measurement).
    send_window: u64,
    /// The receive window: lowered while the inbox is full (`credit.rs`).
    credit: Credit,
}

impl Shared {
    fn new(settings: &Settings, waker: Waker) -> Self {
        Shared {
            waker,
            outbox: Outbox::new(settings.send_high_water / 2),
            inbox: Mutex::new(Inbox::default()),
            resume: Notify::new(),
            // the other half of `recv_high_water` is Python's (yomo.transport.native)
            recv_high: settings.recv_high_water / 2,
            status: Mutex::new((CONNECTING, None)),
            conn: OnceLock::new(),
            endpoint: OnceLock::new(),
            want_writable: Mutex::new(None),
            finish: Mutex::new(0),
            received: AtomicU64::new(0),
            acked: Acked::default(),
            measure: Notify::new(),
            hearing: Hearing::new(),
            send_window: settings.connection_window(),
            credit: Credit::new(settings.connection_window(), settings.read_ahead(Side::Client)),
        }
    }

    /// Make the zipper answer (an ack-eliciting frame); nothing once closed.
    pub fn ping(&self) {
        if let Some(conn) = self.conn.get() {
            self.credit.nudge(conn);
        }
    }

    pub fn status(&self) -> u8 {
        self.status.lock().0
    }

    /// Record the end (first reason wins) and close the QUIC connection with it.
    pub fn set_closed(&self, closed: Closed) {
        {
            let mut s = self.status.lock();
            if s.0 == CLOSED {
                return;
            }
            if let Some(conn) = self.conn.get() {
                if !closed.remote {
                    conn.close(CLOSE_CODE.into(), closed.reason.as_bytes());
                }
            }
            *s = (CLOSED, Some(closed));
        }
        self.outbox.abandon();
        self.resume.notify_one();
        self.waker.wake();
    }

    fn on_sent(&self, backlog: usize) {
        let mut want = self.want_writable.lock();
        if let Some(limit) = *want {
            if backlog <= limit {
                *want = None;
                drop(want);
                self.waker.wake();
            }
        }
    }
}

/// What a quinn connection error means for Python: reason, and whether the peer closed.
pub fn describe(err: &quinn::ConnectionError) -> (String, bool) {
    use quinn::ConnectionError as E;
    match err {
        E::ApplicationClosed(c) => {
            let text = String::from_utf8_lossy(&c.reason).into_owned();
            let code = c.error_code.into_inner();
            if !text.is_empty() {
                (text, true)
            } else if code == 0 {
                ("connection closed".into(), true)
            } else if code == CLOSE_CODE as u64 {
                ("closed by peer".into(), true)
            } else {
                (format!("connection closed with error code {code:#x}"), true)
            }
        }
        E::ConnectionClosed(c) => {
            let text = String::from_utf8_lossy(&c.reason).into_owned();
            (if text.is_empty() { format!("connection closed by peer: {}", c.error_code) } else { text }, true)
        }
        E::TransportError(e) => (tls_words(&e.to_string()), false),
        E::TimedOut => ("idle timeout: no packet from the peer".into(), false),
        E::Reset => ("connection reset by peer".into(), true),
        E::LocallyClosed => ("closed".into(), false),
        other => (other.to_string(), false),
    }
}

/// A failed TLS handshake in the words of the `YOMO_TLS_*` settings.
fn tls_words(text: &str) -> String {
    let says = |s: &str| text.contains(s);
    if says("invalid peer certificate") {
        if says("UnknownIssuer") {
            return format!("TLS: the zipper's certificate is not trusted: unknown issuer certificate (not signed by YOMO_TLS_CACERT_FILE) ({text})");
        }
        if says("NotValidForName") {
            return format!("TLS: the zipper's certificate does not name the host dialled ({text})");
        }
        return format!("TLS: the zipper's certificate is not trusted ({text})");
    }
    if says("CertificateRequired") || says("error 116") {
        return format!(
            "mutual TLS: the zipper requires a client certificate: the client presented no certificate ({text})"
        );
    }
    if says("UnknownCA") || says("BadCertificate") || says("received fatal alert") {
        return format!("mutual TLS: client certificate not trusted by the zipper ({text})");
    }
    text.to_string()
}

/// While the reader is paused it makes the zipper answer this often, so that a merely
/// slow function is never taken for dead (the zipper closes silent ones that producers
/// wait for, `Zipper.dead_after`).
const PAUSED_PING: Duration = Duration::from_millis(200);

/// The most a read takes from quinn at once.
const READ_CHUNK: usize = 64 * 1024;

/// Read frames from `recv` into the inbox until the stream ends or breaks.
///
/// While the inbox is over `recv_high` the stream is still read, into `held`, with the
/// connection's credit closed (`credit.rs`): quinn's buffer stays nearly empty (a full
/// one can end the connection, "too many gaps in stream buffer") and the zipper may
/// send at most one window beyond what Python took, as before. An end of the stream
/// read meanwhile is reported once the held bytes are in the inbox.
async fn run_reader(shared: Arc<Shared>, mut recv: quinn::RecvStream, max_frame: usize) {
    let Some(conn) = shared.conn.get().cloned() else { return };
    let mut reader = FrameReader::new(max_frame);
    let mut offset: u64 = 0;
    let mut held = Held::default();
    let mut ended: Option<Result<(), quinn::ReadError>> = None;
    loop {
        let mut ping_at = tokio::time::Instant::now() + PAUSED_PING;
        loop {
            let notified = shared.resume.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shared.inbox.lock().bytes <= shared.recv_high || shared.status() == CLOSED {
                break;
            }
            tokio::select! {
                biased;
                _ = &mut notified => {}
                r = recv.read_chunk(READ_CHUNK, true), if ended.is_none() => match r {
                    Ok(Some(chunk)) => {
                        let n = chunk.bytes.len();
                        held.push(chunk.bytes);
                        shared.credit.read(&conn, n, held.bytes());
                    }
                    Ok(None) => ended = Some(Ok(())),
                    Err(e) => ended = Some(Err(e)),
                },
                _ = tokio::time::sleep_until(ping_at) => {
                    shared.ping();
                    ping_at = tokio::time::Instant::now() + PAUSED_PING;
                }
            }
        }
        if shared.status() == CLOSED {
            return;
        }
        let next = match held.pop() {
            Some(chunk) => {
                shared.credit.used(&conn, held.bytes());
                Ok(Some(chunk))
            }
            None => match ended.take() {
                Some(Ok(())) => Ok(None),
                Some(Err(e)) => Err(e),
                None => match recv.read_chunk(READ_CHUNK, true).await {
                    Ok(Some(chunk)) => {
                        shared.credit.read(&conn, chunk.bytes.len(), 0);
                        Ok(Some(chunk.bytes))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                },
            },
        };
        match next {
            Ok(Some(bytes)) => {
                // counted as received once used: held bytes are not yet (a paused
                // reader's count holds still, as when it read nothing)
                shared.received.fetch_add(bytes.len() as u64, Relaxed);
                reader.push(&bytes);
                let mut batch = vec![];
                loop {
                    match reader.next_frame() {
                        Ok(Some(frame)) => {
                            let len = frame.len() as u64;
                            match item(frame, offset) {
                                Ok(it) => batch.push(checked(it)),
                                Err(e) => {
                                    return shared.set_closed(Closed { reason: e.0, remote: false, kind: "protocol" })
                                }
                            }
                            offset += len;
                        }
                        Ok(None) => break,
                        Err(e) => return shared.set_closed(Closed { reason: e.0, remote: false, kind: "protocol" }),
                    }
                }
                if !batch.is_empty() {
                    let mut inbox = shared.inbox.lock();
                    for it in batch {
                        inbox.bytes += it.size();
                        inbox.items.push_back(it);
                    }
                    drop(inbox);
                    shared.waker.wake();
                }
            }
            Ok(None) => {
                let reason = match reader.buffered() {
                    0 => "stream closed by peer".to_string(),
                    n => format!("the peer ended its stream inside a frame ({n} bytes of it received)"),
                };
                let kind = if reader.buffered() == 0 { "closed" } else { "protocol" };
                return shared.set_closed(Closed { reason, remote: true, kind });
            }
            Err(quinn::ReadError::ConnectionLost(e)) => {
                let (reason, remote) = describe(&e);
                return shared.set_closed(Closed { reason, remote, kind: "closed" });
            }
            Err(e) => return shared.set_closed(Closed { reason: e.to_string(), remote: true, kind: "closed" }),
        }
    }
}

/// While written bytes are not proven acknowledged and nothing else is to do, the writer
/// measures this often (the zipper acknowledges within its max_ack_delay, 25 ms; a zipper
/// that stops sends its acknowledgements first, `Zipper.flush_acks`).
const ACK_CHECK: Duration = Duration::from_millis(20);

/// Move frames from the outbox onto the stream until the outbox closes or the stream
/// fails, in chunks of at most `acked::CHUNK` bytes, counting what quinn took; between
/// writes (and while quinn holds a write back) measure the acknowledged prefix when
/// Python asks (`acked.rs`: the measurement needs the stream, which this task owns).
async fn run_writer(
    shared: &Shared,
    conn: &quinn::Connection,
    send: &mut quinn::SendStream,
) -> Result<(), quinn::WriteError> {
    enum Step {
        Batch(Option<Vec<Bytes>>),
        Wrote(Result<quinn::Written, quinn::WriteError>),
        Measure,
    }
    loop {
        // written bytes not yet proven acknowledged: look again soon, unasked, so that
        // what the zipper acknowledged just before it closed is known (`ACK_CHECK`)
        let unproven = shared.acked.accepted.load(Relaxed) > shared.acked.floor.load(Relaxed);
        let batch = match tokio::select! {
            b = shared.outbox.take() => Step::Batch(b),
            _ = shared.measure.notified() => Step::Measure,
            _ = tokio::time::sleep(ACK_CHECK), if unproven => Step::Measure,
        } {
            Step::Batch(Some(b)) => b,
            Step::Batch(None) => return Ok(()),
            _ => {
                shared.acked.measure(conn, send, shared.send_window);
                continue;
            }
        };
        let mut chunks: Vec<Bytes> = Vec::with_capacity(batch.len());
        for mut b in batch {
            while b.len() > CHUNK {
                chunks.push(b.split_to(CHUNK));
            }
            chunks.push(b);
        }
        let mut rest = &mut chunks[..];
        while !rest.is_empty() {
            let step = tokio::select! {
                r = send.write_chunks(&mut *rest) => Step::Wrote(r),
                _ = shared.measure.notified() => Step::Measure,
            };
            match step {
                Step::Wrote(Ok(w)) => {
                    shared.acked.accepted.fetch_add(w.bytes as u64, Relaxed);
                    rest = &mut rest[w.chunks..];
                }
                Step::Wrote(Err(e)) => {
                    shared.outbox.abandon();
                    return Err(e);
                }
                _ => shared.acked.measure(conn, send, shared.send_window),
            }
        }
        let left = shared.outbox.after_write();
        shared.on_sent(left);
    }
}

async fn dial(
    shared: Arc<Shared>,
    host: String,
    port: u16,
    name: String,
    settings: Settings,
    tls: Tls,
) -> Result<(), String> {
    let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}"))?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(client_config(&tls)?).map_err(|e| e.to_string())?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(settings.transport(Side::Client));
    let bind: SocketAddr = if addr.is_ipv6() { "[::]:0".parse().unwrap() } else { "0.0.0.0:0".parse().unwrap() };
    let endpoint = quinn::Endpoint::client(bind).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    let _ = shared.endpoint.set(endpoint.clone());
    let name = if server_name(&name).is_ok() { name } else { "localhost".to_string() };
    let connecting = endpoint.connect_with(config, addr, &name).map_err(|e| e.to_string())?;
    let conn = match tokio::time::timeout(settings.handshake(), connecting).await {
        Err(_) => return Err(format!("no QUIC handshake within {:.1} s", settings.handshake_timeout)),
        Ok(Err(e)) => return Err(describe(&e).0),
        Ok(Ok(conn)) => conn,
    };
    let _ = shared.conn.set(conn.clone());
    let (mut send, recv) = match conn.open_bi().await {
        Ok(pair) => pair,
        Err(e) => {
            // the handshake was done: the zipper closed right after (e.g. mutual TLS)
            let (reason, remote) = describe(&e);
            shared.set_closed(Closed { reason, remote, kind: "closed" });
            return Ok(());
        }
    };
    {
        let mut s = shared.status.lock();
        if s.0 == CLOSED {
            conn.close(CLOSE_CODE.into(), b"client closed");
            return Ok(());
        }
        s.0 = OPEN;
    }
    shared.waker.wake();
    tokio::spawn(run_reader(shared.clone(), recv, settings.max_frame_size));
    let watcher = shared.clone();
    let c = conn.clone();
    tokio::spawn(async move {
        let err = c.closed().await;
        let (reason, remote) = describe(&err);
        watcher.set_closed(Closed { reason, remote, kind: "closed" });
    });
    let _ = run_writer(&shared, &conn, &mut send).await;
    // the outbox closed: either the connection is gone, or Python asked to finish
    if *shared.finish.lock() == 1 {
        let ok = send.finish().is_ok() && matches!(send.stopped().await, Ok(None));
        *shared.finish.lock() = if ok { 2 } else { 3 };
        shared.waker.wake();
    }
    Ok(())
}

/// A dialled connection to a zipper; see the module docs. Python: `yomo.transport.native`.
#[pyclass(module = "yomo._native", frozen)]
pub struct Connection {
    pub shared: Arc<Shared>,
}

#[pymethods]
impl Connection {
    /// Start dialling `host:port` (returns at once; the waker fires when it is done).
    #[new]
    #[pyo3(signature = (host, port, server_name, settings, cert_file, key_file, ca_file, verify_peer, wake_fd))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        host: String,
        port: u16,
        server_name: String,
        settings: &Bound<'_, PyAny>,
        cert_file: Option<String>,
        key_file: Option<String>,
        ca_file: Option<String>,
        verify_peer: bool,
        wake_fd: i64,
    ) -> PyResult<Self> {
        let waker = Waker::new(wake_fd); // owns the fd from here on, even on error
        let settings = Settings::from_py(settings)?;
        let shared = Arc::new(Shared::new(&settings, waker));
        let tls = Tls { cert_file, key_file, ca_file, verify_peer };
        let task = shared.clone();
        runtime().spawn(async move {
            if let Err(reason) = dial(task.clone(), host, port, server_name, settings, tls).await {
                task.set_closed(Closed { reason, remote: false, kind: "connect" });
            }
        });
        Ok(Connection { shared })
    }

    /// 0 connecting, 1 open, 2 closed.
    #[getter]
    fn status(&self) -> u8 {
        self.shared.status()
    }

    /// `(reason, remote, kind)` once closed, else None.
    fn close_info(&self) -> Option<(String, bool, &'static str)> {
        self.shared.status.lock().1.as_ref().map(|c| (c.reason.clone(), c.remote, c.kind))
    }

    /// Queue a list of encoded frames (`bytes` objects), in order, in one call. They are
    /// copied into chunks of up to `acked::CHUNK` bytes (small allocations, reused by the
    /// allocator; one large buffer per call would cost page faults), so quinn gets a few
    /// pieces, not one per frame. Returns the backlog, or -1 when the connection is closed.
    fn send_frames(&self, frames: &Bound<'_, PyList>) -> PyResult<i64> {
        let mut batch = Vec::new();
        let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK);
        for frame in frames.iter() {
            let frame = frame.cast_into::<PyBytes>()?;
            let data = frame.as_bytes();
            if !chunk.is_empty() && chunk.len() + data.len() > CHUNK {
                batch.push(Bytes::from(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))));
            }
            chunk.extend_from_slice(data);
        }
        if !chunk.is_empty() {
            batch.push(Bytes::from(chunk));
        }
        Ok(match self.shared.outbox.push_many(batch) {
            Some(n) => n as i64,
            None => -1,
        })
    }

    /// Every frame received so far and their size in the inbox's count:
    /// `([items], bytes)`, an item being `(tag, metadata, payload)` for a DataFrame (its
    /// metadata checked), the encoded bytes for other frames.
    fn take<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyList>, usize)> {
        let (items, bytes, resume) = {
            let mut inbox = self.shared.inbox.lock();
            let was_over = inbox.bytes > self.shared.recv_high;
            let bytes = std::mem::take(&mut inbox.bytes);
            (std::mem::take(&mut inbox.items), bytes, was_over)
        };
        if resume {
            self.shared.resume.notify_one();
        }
        let list = PyList::new(py, items.iter().map(|it| it.to_py(py)).collect::<PyResult<Vec<_>>>()?)?;
        Ok((list, bytes))
    }

    /// Python drained the wake-up socket: allow the next wake-up.
    fn rearm(&self) {
        self.shared.waker.rearm();
    }

    /// Wake Python once the backlog is at or below `limit` (at once if it already is).
    fn want_writable(&self, limit: usize) {
        if self.shared.outbox.backlog() <= limit || self.shared.status() == CLOSED {
            self.shared.waker.wake();
        } else {
            *self.shared.want_writable.lock() = Some(limit);
            if self.shared.outbox.backlog() <= limit {
                self.shared.on_sent(0);
            }
        }
    }

    #[getter]
    fn send_backlog(&self) -> usize {
        self.shared.outbox.backlog()
    }

    #[getter]
    fn recv_backlog(&self) -> usize {
        self.shared.inbox.lock().bytes
    }

    #[getter]
    fn remote_address(&self) -> (String, u16) {
        match self.shared.conn.get() {
            Some(c) => {
                let a = c.remote_address();
                (a.ip().to_canonical().to_string(), a.port())
            }
            None => (String::new(), 0),
        }
    }

    /// Send what is queued, end the stream and wait (in the background) until the
    /// zipper acknowledged all of it; `finished` then says whether it did.
    fn finish(&self) {
        let mut f = self.shared.finish.lock();
        if *f == 0 {
            *f = 1;
            drop(f);
            self.shared.outbox.close(); // the writer sends the rest, then ends the stream
        }
    }

    /// None while finishing (or not asked), True once everything was acknowledged,
    /// False when that failed (the connection closed first).
    #[getter]
    fn finished(&self) -> Option<bool> {
        match *self.shared.finish.lock() {
            2 => Some(true),
            3 => Some(false),
            1 if self.shared.status() == CLOSED => Some(false),
            _ => None,
        }
    }

    /// Stream bytes received from the zipper so far.
    #[getter]
    fn bytes_received(&self) -> u64 {
        self.shared.received.load(Relaxed)
    }

    /// `(written, acknowledged)`: stream bytes queued so far (by Python, and by the
    /// zipper's mesh forwarding on a mesh link), and the prefix of them the zipper's
    /// transport is proven to have acknowledged (see `acked.rs`; never more than it
    /// did). Each call also asks for a fresh measurement, seen by the next call (a
    /// watchdog tick later).
    fn acked(&self) -> (u64, u64) {
        let acked = &self.shared.acked;
        let floor = acked.floor.load(Relaxed);
        if acked.accepted.load(Relaxed) > floor {
            self.shared.measure.notify_one();
        }
        (self.shared.outbox.total(), floor)
    }

    /// Seconds since the last datagram from the zipper (0 before the handshake).
    fn silent_for(&self) -> f64 {
        match self.shared.conn.get() {
            Some(conn) => self.shared.hearing.silent_for(conn).as_secs_f64(),
            None => 0.0,
        }
    }

    /// Count the zipper as heard now (our own loop stalled: silence proves nothing).
    fn heard_now(&self) {
        if let Some(conn) = self.shared.conn.get() {
            self.shared.hearing.heard_now(conn);
        }
    }

    /// Make the zipper answer now (an ack-eliciting frame; quinn has no public PING).
    fn ping(&self) {
        self.shared.ping();
    }

    /// Close now with YoMo's code (or `code`) and `reason` (idempotent).
    #[pyo3(signature = (reason, code = CLOSE_CODE))]
    fn close(&self, reason: String, code: u32) {
        if let Some(conn) = self.shared.conn.get() {
            conn.close(code.into(), reason.as_bytes());
        }
        self.shared.set_closed(Closed { reason, remote: false, kind: "closed" });
    }
}
