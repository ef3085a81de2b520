//! The zipper's data path (the Python concept `yomo.Zipper`, native side): listen, take
//! each connection's first frame and ask Python (`take_events` -> `accept`/`reject`),
//! then read DataFrames and route them by tag and target to the stream functions that
//! observe them, and to mesh links. Python owns the policy (version, auth, registration)
//! and the logs; this file owns the bytes. Go: core/server.go.
//!
//! Slow consumers: with "block" (lossless) a producer whose frame went to a function with
//! more than `send_high_water` unsent stops being read until that function drains to
//! half of it, so QUIC flow control slows that producer only; with "drop" a frame for a
//! function over `drop_threshold` is dropped for it, counted and reported.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed},
        Arc, OnceLock,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use pyo3::{
    exceptions::{PyOSError, PyValueError},
    prelude::*,
    types::{PyBytes, PyDict, PyList, PyTuple},
};
use tokio::sync::oneshot;

use crate::{
    connection::{describe, Connection, CLOSE_CODE},
    credit::{Credit, Held},
    hold::StartupHold,
    lane::{self, Class, ZipperRuntime},
    liveness::{nudge, Hearing},
    mesh::MeshLink,
    metadata,
    outbox::{run_writer, Outbox},
    resend::{Progress, ResendLedger, FORWARDING, RESENT},
    router::Router,
    runtime::{runtime, zipper_runtime, Waker, SCHED},
    settings::{Settings, Side},
    stats::Stats,
    tls::{check_client, server_config, ClientCheck, Tls},
    y3::{self, FrameReader},
};

const UPSTREAM_ZIPPER: u8 = 0x5E;
const STREAM_FUNCTION: u8 = 0x5D;
/// Tap frames (for Python forwarders) held before new ones are dropped.
const TAP_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Go v1.22.3 closes a connection that writes a tag in 0xF000-0xFFFF with this text
/// (Go: core/frame/frame.go ErrReservedTag; `yomo.zipper.server.RESERVED_TAG_MESSAGE`).
const RESERVED_TAG_MESSAGE: &str = "[0xF000, 0xFFFF] is reserved; please do not write within this range";
/// How often a producer held for a function checks (and pings) that function.
const DEAD_CHECK: Duration = Duration::from_millis(250);
/// The most a read takes from quinn at once (also the most a held producer's credit
/// limit can pass its one window by, `credit.rs`).
const READ_CHUNK: usize = 64 * 1024;
/// Connections being told "the zipper is full" at once; more are refused without a word.
const MAX_REFUSING: usize = 256;

/// The reason a peer that ended its stream leaves with: inside a frame, that is bad input.
fn fin_reason(buffered: usize) -> (String, bool) {
    match buffered {
        0 => ("stream closed by peer".into(), false),
        n => (format!("the peer ended its stream inside a frame ({n} bytes of it received)"), true),
    }
}

/// How a producer's stream ended (reported once what it holds is routed).
enum Ended {
    Fin,
    Lost(String),
}

/// One read's result into `held` (its credit counted) or `ended`; false when the zipper
/// itself closed the connection.
fn take(
    peer: &Peer,
    r: Result<Option<quinn::Chunk>, quinn::ReadError>,
    held: &mut Held,
    ended: &mut Option<Ended>,
) -> bool {
    match r {
        Ok(Some(chunk)) => {
            let n = chunk.bytes.len();
            held.push(chunk.bytes);
            peer.credit.read(&peer.conn, n, held.bytes());
        }
        Ok(None) => *ended = Some(Ended::Fin),
        Err(quinn::ReadError::ConnectionLost(quinn::ConnectionError::LocallyClosed)) => return false,
        Err(quinn::ReadError::ConnectionLost(e)) => *ended = Some(Ended::Lost(describe(&e).0)),
        Err(e) => *ended = Some(Ended::Lost(e.to_string())),
    }
    true
}

/// Move what quinn has ready for the stream into `held`, without waiting; false when
/// the zipper itself closed the connection.
async fn take_ready(peer: &Peer, recv: &mut quinn::RecvStream, held: &mut Held, ended: &mut Option<Ended>) -> bool {
    while ended.is_none() {
        let r = tokio::select! {
            biased;
            r = recv.read_chunk(READ_CHUNK, true) => r,
            _ = std::future::ready(()) => return true,
        };
        if !take(peer, r, held, ended) {
            return false;
        }
    }
    true
}

/// Python's answer to a handshake.
enum Decision {
    Accept {
        number: u64,
        client_id: String,
        client_type: u8,
        tags: Vec<u32>,
        target: String,
        merge: Vec<(String, String)>,
        reply: Bytes,
    },
    Reject {
        reply: Option<Bytes>,
        reason: String,
    },
}

/// What Python is told, in batches.
enum Event {
    Handshake {
        id: u64,
        frame: Bytes,
        addr: SocketAddr,
    },
    /// A connection ended before or without registration, or was refused (`kind`:
    /// "tls", "timeout", "protocol", "closed").
    Refused {
        addr: SocketAddr,
        kind: &'static str,
        reason: String,
    },
    Closed {
        number: u64,
        reason: String,
        protocol_error: bool,
    },
    /// A function producers waited for was silent for `dead_after` and was closed.
    Dead {
        number: u64,
        silent: f64,
        backlog: usize,
    },
    SlowConsumer {
        number: u64,
        dropped: u64,
        backlog: usize,
    },
    Tap {
        tag: u32,
        metadata: Bytes,
        frame: Bytes,
    },
}

/// A registered connection.
struct Peer {
    number: u64,
    client_type: u8,
    merge: Vec<(String, String)>,
    outbox: Outbox,
    conn: quinn::Connection,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    dropped: AtomicU64,
    recv_backlog: AtomicUsize,
    last_drop_report: Mutex<Option<Instant>>,
    hearing: Hearing,
    /// Why the zipper closed this connection itself (reported instead of quinn's "closed").
    closed_as: Mutex<Option<String>>,
    /// Its frames routed so far, for re-sent copies (resend.rs).
    progress: Arc<Progress>,
    /// Its receive credit: counted for bytes routed, not read (`credit.rs`).
    credit: Credit,
    /// Its QUIC driver's lane: slow while it carries no frames (`lane.rs`).
    lane: Option<Arc<Class>>,
}

impl Peer {
    /// It carries a DataFrame (in or out): its QUIC driver stays in the fast lane.
    #[inline]
    fn carries(&self) {
        if let Some(lane) = &self.lane {
            lane.active();
        }
    }
}

struct Core {
    waker: Waker,
    settings: Settings,
    drop_policy: bool,
    drop_threshold: usize,
    handshake_timeout: Duration,
    /// A function producers wait for that is silent this long is closed (None: never).
    dead_after: Option<Duration>,
    client_check: Option<ClientCheck>,
    endpoint: Mutex<Option<quinn::Endpoint>>,
    local: OnceLock<SocketAddr>,
    events: Mutex<VecDeque<Event>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Decision>>>,
    router: RwLock<Router<Peer>>,
    /// Frames that came before any observer of their tag, just after the start (hold.rs).
    hold: StartupHold,
    /// Re-sent frames routed once (resend.rs).
    resend: ResendLedger,
    peers: RwLock<HashMap<u64, Arc<Peer>>>,
    live: Mutex<HashMap<u64, quinn::Connection>>,
    links: RwLock<Vec<Arc<MeshLink>>>,
    tap: AtomicBool,
    tap_bytes: AtomicUsize,
    tap_dropped: AtomicU64,
    stats: Stats,
    next_id: AtomicU64,
    stopped: AtomicBool,
    /// Connections counted against `max_connections` (from the moment they are taken
    /// from the endpoint, QUIC handshake included), and those being refused.
    admitted: AtomicUsize,
    refusing: AtomicUsize,
}

impl Core {
    fn event(&self, e: Event) {
        self.events.lock().push_back(e);
        self.waker.wake();
    }

    /// A connection over `max_connections`: finish the QUIC handshake only to tell the
    /// client why it is closed (as the pure-Python path does).
    async fn refuse_full(self: Arc<Self>, incoming: quinn::Incoming, cap: usize) {
        let addr = incoming.remote_address();
        let reason = format!("yomo: the zipper is full ({cap} connections, max_connections)");
        if let Ok(Ok(conn)) = tokio::time::timeout(self.settings.handshake(), incoming).await {
            conn.close(CLOSE_CODE.into(), reason.as_bytes());
        }
        self.refusing.fetch_sub(1, Relaxed);
        self.event(Event::Refused { addr, kind: "full", reason });
    }

    /// One connection, from the QUIC handshake to its end.
    async fn serve(self: Arc<Self>, incoming: quinn::Incoming) {
        let addr = incoming.remote_address();
        let (accepted, lane) = lane::accept(incoming);
        let conn = match accepted {
            Ok(connecting) => connecting.await,
            Err(e) => Err(e),
        };
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                let reason = tls_reason(&e);
                return self.event(Event::Refused { addr, kind: "tls", reason });
            }
        };
        if let Some(check) = &self.client_check {
            if let Err(reason) = check_client(check, conn.peer_identity()) {
                conn.close(CLOSE_CODE.into(), reason.as_bytes());
                return self.event(Event::Refused { addr, kind: "tls", reason });
            }
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        self.live.lock().insert(id, conn.clone());
        if self.stopped.load(Relaxed) {
            conn.close(CLOSE_CODE.into(), b"zipper is shutting down");
        }
        self.clone().serve_conn(id, conn.clone(), addr, lane).await;
        self.live.lock().remove(&id);
    }

    async fn serve_conn(self: Arc<Self>, id: u64, conn: quinn::Connection, addr: SocketAddr, lane: Option<Arc<Class>>) {
        let mut reader = FrameReader::new(self.settings.max_frame_size);
        let deadline = tokio::time::Instant::now() + self.handshake_timeout;
        let first = tokio::time::timeout_at(deadline, async {
            let (send, mut recv) = conn.accept_bi().await.map_err(|e| (describe(&e).0, "closed"))?;
            let mut read = 0;
            loop {
                match reader.next_frame() {
                    Ok(Some(frame)) => return Ok((send, recv, frame, read)),
                    Ok(None) => {}
                    Err(e) => return Err((e.0, "protocol")),
                }
                match recv.read_chunk(READ_CHUNK, true).await {
                    Ok(Some(chunk)) => {
                        read += chunk.bytes.len();
                        reader.push_bytes(chunk.bytes)
                    }
                    Ok(None) => {
                        return Err(match fin_reason(reader.buffered()) {
                            (reason, true) => (reason, "protocol"),
                            (reason, false) => (reason, "fin"),
                        })
                    }
                    Err(e) => return Err((e.to_string(), "closed")),
                }
            }
        })
        .await;
        let (mut send, recv, frame, read) = match first {
            Ok(Ok(v)) => v,
            Ok(Err((reason, kind))) => {
                if kind != "closed" {
                    // bad bytes, or a stream ended before its handshake (a half-open
                    // connection must not stay): counted, closed with the reason
                    self.stats.protocol_errors.fetch_add(1, Relaxed);
                    conn.close(CLOSE_CODE.into(), reason.as_bytes());
                }
                return self.event(Event::Refused { addr, kind, reason });
            }
            Err(_) => {
                self.stats.rejections.fetch_add(1, Relaxed);
                let reason = format!(
                    "handshake timeout: no HandshakeFrame within {} s",
                    trim_float(self.handshake_timeout.as_secs_f64())
                );
                conn.close(CLOSE_CODE.into(), reason.as_bytes());
                return self.event(Event::Refused { addr, kind: "timeout", reason });
            }
        };
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        self.event(Event::Handshake { id, frame, addr });
        let decision = tokio::select! {
            d = rx => d,
            _ = conn.closed() => { self.pending.lock().remove(&id); return; }
        };
        let Ok(decision) = decision else {
            conn.close(CLOSE_CODE.into(), b"zipper is shutting down");
            return;
        };
        match decision {
            Decision::Reject { reply, reason } => {
                if let Some(reply) = reply {
                    // The RejectedFrame, then the close: a closed connection drops what its
                    // peer has not read yet, so give the client (which closes by itself
                    // once it reads the rejection, as Go's do) up to half a second first.
                    // Ending the stream instead would read as "stream closed" first.
                    if send.write_all(&reply).await.is_ok() {
                        tokio::select! {
                            _ = conn.closed() => {}
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        }
                    }
                }
                conn.close(CLOSE_CODE.into(), reason.as_bytes());
            }
            Decision::Accept { number, client_id, client_type, tags, target, merge, reply } => {
                let peer = Arc::new(Peer {
                    number,
                    client_type,
                    merge,
                    outbox: Outbox::new(self.settings.send_high_water / 2),
                    conn: conn.clone(),
                    frames_in: AtomicU64::new(0),
                    frames_out: AtomicU64::new(0),
                    dropped: AtomicU64::new(0),
                    recv_backlog: AtomicUsize::new(0),
                    last_drop_report: Mutex::new(None),
                    hearing: Hearing::new(),
                    closed_as: Mutex::new(None),
                    progress: self.resend.opened(&client_id),
                    credit: Credit::new(self.settings.connection_window(), self.settings.read_ahead(Side::Zipper)),
                    lane,
                });
                peer.credit.read(&conn, read, 0); // the handshake's read, before the peer existed
                peer.outbox.push(reply);
                if let Some(lane) = &peer.lane {
                    lane.registered(); // idle from here on: the slow lane after a grace time
                }
                self.peers.write().insert(number, peer.clone());
                if client_type == STREAM_FUNCTION {
                    let mut router = self.router.write();
                    router.add(number, &tags, &target, peer.clone());
                    // what reached a just-started zipper before it: first, in order
                    for (tag, size, frame) in self.hold.take_for(&tags, &target) {
                        peer.carries();
                        let sent = peer.outbox.push(frame).is_some() as u64;
                        peer.frames_out.fetch_add(sent, Relaxed);
                        self.stats.record_late(tag, size, sent, 0);
                    }
                }
                let writer_peer = peer.clone();
                let writer = tokio::spawn(async move {
                    let _ = run_writer(&writer_peer.outbox, &mut send, |_| {}).await;
                });
                let (mut reason, protocol_error) = self.clone().read_loop(&peer, reader, recv).await;
                if let Some(own) = peer.closed_as.lock().take() {
                    reason = own;
                }
                self.router.write().remove(number);
                self.peers.write().remove(&number);
                self.resend.closed(&peer.progress);
                peer.outbox.abandon();
                writer.abort();
                conn.close(CLOSE_CODE.into(), reason.as_bytes());
                crate::stats::log_quic_stats(number, client_type, &conn);
                self.event(Event::Closed { number, reason, protocol_error });
            }
        }
    }

    /// Route the connection's DataFrames until it ends; returns why, and whether the
    /// peer broke the protocol.
    ///
    /// The stream is read eagerly into `held` (quinn's chunks, in order): whatever quinn
    /// has ready is taken before each chunk is routed, and while the producer is held
    /// for a function (`wait_for`) the stream is read as it arrives. The connection's
    /// credit counts bytes routed, not bytes read (`credit.rs`), so the producer may
    /// send at most about one window beyond what was routed, as before; quinn's own
    /// buffer stays nearly empty (a full one can end the connection, "too many gaps in
    /// stream buffer"). A stream that ends or a connection that breaks while bytes are
    /// held is reported once they are routed: they were acknowledged, so they are
    /// delivered.
    async fn read_loop(
        self: Arc<Self>,
        peer: &Arc<Peer>,
        mut reader: FrameReader,
        mut recv: quinn::RecvStream,
    ) -> (String, bool) {
        let mut offset: u64 = 0;
        let mut dests: Vec<Arc<Peer>> = Vec::new();
        let mut waits: Vec<Arc<Peer>> = Vec::new();
        let mut held = Held::default();
        // how the stream ended, once read while bytes were held
        let mut ended: Option<Ended> = None;
        let protocol = |s: &Self, reason: String| {
            s.stats.protocol_errors.fetch_add(1, Relaxed);
            (reason, true)
        };
        let closed_here = || ("closed".to_string(), false); // the zipper closed it: nothing to route to
        loop {
            // route every whole frame, feeding held chunks to the reader as it runs dry
            while waits.is_empty() {
                let frame = match reader.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => {
                        if !take_ready(peer, &mut recv, &mut held, &mut ended).await {
                            return closed_here();
                        }
                        match held.pop() {
                            Some(chunk) => {
                                reader.push_bytes(chunk);
                                peer.credit.used(&peer.conn, held.bytes());
                                continue;
                            }
                            None => break,
                        }
                    }
                    Err(e) => return protocol(&self, e.0),
                };
                let len = frame.len() as u64;
                let kind = frame[0] & 0x3F;
                if kind != y3::DATA {
                    return protocol(&self, format!("unexpected frame from client: {}", y3::frame_name(kind)));
                }
                if let Err(reason) = self.route(peer, frame, offset, &mut dests, &mut waits) {
                    return protocol(&self, reason);
                }
                offset += len;
            }
            peer.recv_backlog.store(reader.buffered() + held.bytes(), Relaxed);
            if !waits.is_empty() {
                // held: wait for the function, reading the stream meanwhile
                let dest = waits.remove(0);
                let wait = self.wait_for(&dest);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        biased;
                        _ = &mut wait => break,
                        r = recv.read_chunk(READ_CHUNK, true), if ended.is_none() => {
                            if !take(peer, r, &mut held, &mut ended) {
                                return closed_here();
                            }
                            peer.recv_backlog.store(reader.buffered() + held.bytes(), Relaxed);
                        }
                    }
                }
                continue;
            }
            // nothing held and nothing ready: wait for the stream
            match ended.take() {
                Some(Ended::Fin) => {
                    return match fin_reason(reader.buffered()) {
                        (reason, true) => protocol(&self, reason),
                        other => other,
                    }
                }
                Some(Ended::Lost(reason)) => return (reason, false),
                None => {}
            }
            let r = recv.read_chunk(READ_CHUNK, true).await;
            if !take(peer, r, &mut held, &mut ended) {
                return closed_here();
            }
        }
    }

    /// Hold the producer until `dest` drains below half its high-water mark. A function
    /// that producers wait for is pinged every `DEAD_CHECK`; one that has been silent
    /// for `dead_after` (its process died: nothing acknowledges) is closed, so it holds
    /// nobody until the idle timeout. A live one answers the ping however slowly it reads.
    async fn wait_for(&self, dest: &Arc<Peer>) {
        let low = self.settings.send_high_water / 2;
        let Some(dead_after) = self.dead_after else { return dest.outbox.wait_room(low).await };
        loop {
            let asked = Instant::now();
            if tokio::time::timeout(DEAD_CHECK, dest.outbox.wait_room(low)).await.is_ok() {
                return;
            }
            if dest.conn.close_reason().is_some() {
                return;
            }
            if asked.elapsed() > DEAD_CHECK * 2 {
                dest.hearing.heard_now(&dest.conn); // our own threads stalled: proves nothing
            }
            let silent = dest.hearing.silent_for(&dest.conn);
            if silent > dead_after {
                let reason = format!("not answering for {} s", trim_float(dead_after.as_secs_f64()));
                *dest.closed_as.lock() = Some(reason.clone());
                dest.conn.close(CLOSE_CODE.into(), reason.as_bytes());
                let backlog = dest.outbox.backlog();
                self.event(Event::Dead { number: dest.number, silent: silent.as_secs_f64(), backlog });
                return;
            }
            dest.credit.nudge(&dest.conn);
        }
    }

    /// Route one DataFrame. Errors are protocol errors (bad frame or metadata, a
    /// reserved tag).
    fn route(
        &self,
        peer: &Peer,
        frame: Bytes,
        offset: u64,
        dests: &mut Vec<Arc<Peer>>,
        waits: &mut Vec<Arc<Peer>>,
    ) -> Result<(), String> {
        let view = y3::parse_data(&frame, offset).map_err(|e| e.0)?;
        let tag = view.tag;
        if tag & 0xFFFF_F000 == 0xF000 {
            // Go: core/server.go RejectReservedTagMiddleware (frame.IsReservedTag)
            return Err(RESERVED_TAG_MESSAGE.into());
        }
        let size = view.payload.len() as u64;
        SCHED.routed(frame.len(), 1);
        peer.carries();
        let index = peer.frames_in.fetch_add(1, Relaxed);
        let md = &frame[view.metadata.clone()];
        let (target, mark) = metadata::target_and(md, RESENT)?;
        let (out, target) = if peer.merge.is_empty() && mark.is_none() {
            (frame, target)
        } else {
            let mut over = peer.merge.clone();
            if mark.is_some() {
                over.push((RESENT.to_string(), String::new())); // the mark ends here
            }
            let (md, target) = metadata::merge(md, &over)?;
            (y3::encode_data(tag, &md, &frame[view.payload.clone()]), target)
        };
        // once per destination, in order, under the progress's lock (resend.rs)
        self.resend.admit(&peer.progress, index, mark.as_deref(), |fresh| {
            self.route_to(peer, tag, size, target, out, dests, waits, fresh)
        });
        Ok(())
    }

    /// Route DataFrame `out` (`size`: its payload's) to its observers and links; `fresh`
    /// says whether a destination (a connection number, or FORWARDING) lacks it yet.
    #[allow(clippy::too_many_arguments)]
    fn route_to(
        &self,
        peer: &Peer,
        tag: u32,
        size: u64,
        target: Option<String>,
        out: Bytes,
        dests: &mut Vec<Arc<Peer>>,
        waits: &mut Vec<Arc<Peer>>,
        fresh: &mut dyn FnMut(u64) -> bool,
    ) {
        dests.clear();
        let from_mesh = peer.client_type == UPSTREAM_ZIPPER;
        let tap = self.tap.load(Relaxed);
        let forwarding = !from_mesh && (tap || !self.links.read().is_empty());
        let router = self.router.read();
        router.route(tag, target.as_deref(), dests);
        if dests.is_empty() && !forwarding {
            // held under the router's lock: a function registering now gets it (hold.rs)
            let held = self.hold.hold(tag, target.as_deref(), &out, size);
            drop(router);
            self.stats.record(tag, size, 0, !held, 0);
            return;
        }
        drop(router);
        let mut sent = 0;
        let mut dropped = 0;
        for dest in dests.drain(..) {
            if !fresh(dest.number) {
                continue; // it had this frame (a re-sent copy, resend.rs)
            }
            if self.drop_policy && dest.outbox.backlog() > self.drop_threshold {
                dropped += 1;
                self.count_drop(&dest);
                continue;
            }
            dest.carries();
            if let Some(backlog) = dest.outbox.push(out.clone()) {
                sent += 1;
                dest.frames_out.fetch_add(1, Relaxed);
                if !self.drop_policy && backlog > self.settings.send_high_water {
                    waits.push(dest);
                }
            }
        }
        SCHED.routed(out.len(), sent);
        if forwarding && fresh(FORWARDING) {
            for link in self.links.read().iter() {
                link.offer(&out);
            }
            if tap {
                self.tap_frame(tag, &out);
            }
        }
        self.stats.record(tag, size, sent, false, dropped);
    }

    fn count_drop(&self, dest: &Peer) {
        let dropped = dest.dropped.fetch_add(1, Relaxed) + 1;
        let mut last = dest.last_drop_report.lock();
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            *last = Some(now);
            drop(last);
            self.event(Event::SlowConsumer { number: dest.number, dropped, backlog: dest.outbox.backlog() });
        }
    }

    fn tap_frame(&self, tag: u32, frame: &Bytes) {
        let size = frame.len();
        if self.tap_bytes.fetch_add(size, Relaxed) + size > TAP_MAX_BYTES {
            self.tap_bytes.fetch_sub(size, Relaxed);
            self.tap_dropped.fetch_add(1, Relaxed);
            return;
        }
        let metadata = match y3::parse_data(frame, 0) {
            Ok(v) => frame.slice(v.metadata),
            Err(_) => Bytes::new(),
        };
        self.event(Event::Tap { tag, metadata, frame: frame.clone() });
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// Why a QUIC/TLS handshake failed, in words for the log (mutual TLS above all).
fn tls_reason(e: &quinn::ConnectionError) -> String {
    let text = e.to_string();
    if text.contains("certificate") || text.contains("Certificate") {
        format!("mutual TLS: {text}")
    } else {
        text
    }
}

/// The receive buffer the zipper asks for (the kernel caps it at `net.core.rmem_max`
/// and doubles it).
const UDP_RECV_BUFFER: usize = 4 << 20;

fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        let _ = sock.set_only_v6(false);
    }
    // bursts of a fast producer and its acknowledgements need more than the default
    // (so would 10,000 clients closing at once: their CONNECTION_CLOSEs overflow 8 MiB,
    // docs/transport.md; forcing 32 MiB past rmem_max let more of a held producer's
    // bytes through the zipper, past the backpressure tests' bound, so it is not done)
    let _ = sock.set_recv_buffer_size(UDP_RECV_BUFFER);
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// The zipper's native data path; `yomo.zipper` drives it. See the module docs.
#[pyclass(module = "yomo._native", frozen)]
pub struct Zipper {
    core: Arc<Core>,
    /// The socket's receive buffer as the kernel granted it (bytes, doubled by Linux).
    recv_buffer: usize,
}

#[pymethods]
impl Zipper {
    /// Listen on `host:port` (0: any free port) with the certificate in `cert_file`.
    #[new]
    /// `reset_key` keys the stateless resets (kept across restarts by Python, so that
    /// clients of a restarted zipper learn at once that their connection is gone).
    /// `startup_hold` seconds after the start, frames nobody observes yet are held for
    /// the functions that register then (at most `startup_hold_bytes`; hold.rs).
    #[pyo3(signature = (host, port, settings, cert_file, key_file, ca_file, verify_peer, wake_fd, drop_policy, drop_threshold, handshake_timeout, dead_after, reset_key, startup_hold=0.0, startup_hold_bytes=0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        host: String,
        port: u16,
        settings: &Bound<'_, PyAny>,
        cert_file: String,
        key_file: String,
        ca_file: Option<String>,
        verify_peer: bool,
        wake_fd: i64,
        drop_policy: bool,
        drop_threshold: usize,
        handshake_timeout: f64,
        dead_after: f64,
        reset_key: &[u8],
        startup_hold: f64,
        startup_hold_bytes: usize,
    ) -> PyResult<Self> {
        let waker = Waker::new(wake_fd); // owns the fd from here on, even on error
        zipper_runtime(); // started here unless this process started it already
        let settings = Settings::from_py(settings)?;
        let tls = Tls { cert_file: Some(cert_file), key_file: Some(key_file), ca_file, verify_peer };
        let (crypto, client_check) = server_config(&tls).map_err(PyValueError::new_err)?;
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(crypto)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(settings.transport(Side::Zipper));
        let addr: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .map_err(|e| PyOSError::new_err(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| PyOSError::new_err(format!("cannot resolve {host}")))?;
        let sock = udp_socket(addr).map_err(|e| PyOSError::new_err(e.to_string()))?;
        let recv_buffer = socket2::SockRef::from(&sock).recv_buffer_size().unwrap_or(0);
        let core = Arc::new(Core {
            waker,
            settings,
            drop_policy,
            drop_threshold,
            handshake_timeout: Duration::from_secs_f64(handshake_timeout.max(0.001)),
            dead_after: (dead_after > 0.0).then(|| Duration::from_secs_f64(dead_after)),
            client_check,
            endpoint: Mutex::new(None),
            local: OnceLock::new(),
            events: Mutex::new(VecDeque::new()),
            pending: Mutex::new(HashMap::new()),
            router: RwLock::new(Router::default()),
            resend: ResendLedger::default(),
            hold: StartupHold::new(Duration::from_secs_f64(startup_hold.max(0.0)), startup_hold_bytes),
            peers: RwLock::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            links: RwLock::new(Vec::new()),
            tap: AtomicBool::new(false),
            tap_bytes: AtomicUsize::new(0),
            tap_dropped: AtomicU64::new(0),
            stats: Stats::default(),
            next_id: AtomicU64::new(1),
            stopped: AtomicBool::new(false),
            admitted: AtomicUsize::new(0),
            refusing: AtomicUsize::new(0),
        });
        let endpoint = {
            let _guard = runtime().enter();
            let reset = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, reset_key);
            // quinn answers only connection ids it recognises as its own (a keyed hash in
            // the id): with the same key a restarted zipper recognises its old ones
            let tag = ring::hmac::sign(&reset, b"yomo connection ids");
            let cid_key = u64::from_le_bytes(tag.as_ref()[..8].try_into().expect("8 bytes"));
            let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(reset));
            endpoint_config
                .cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)));
            // connections that carry no frames wait in a slow lane (lane.rs)
            quinn::Endpoint::new(endpoint_config, Some(config), sock, Arc::new(ZipperRuntime::new()))
                .map_err(|e| PyOSError::new_err(e.to_string()))?
        };
        if let Ok(a) = endpoint.local_addr() {
            let _ = core.local.set(a);
        }
        *core.endpoint.lock() = Some(endpoint.clone());
        if let Some(window) = core.hold.remaining() {
            let held = core.clone();
            runtime().spawn(async move {
                tokio::time::sleep(window).await;
                for tag in held.hold.expire() {
                    held.stats.record_late(tag, 0, 0, 1);
                }
            });
        }
        runtime().spawn(SCHED.watch());
        let accept = core.clone();
        runtime().spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let cap = accept.settings.max_connections;
                if accept.admitted.fetch_add(1, Relaxed) >= cap {
                    accept.admitted.fetch_sub(1, Relaxed);
                    if accept.refusing.fetch_add(1, Relaxed) >= MAX_REFUSING {
                        accept.refusing.fetch_sub(1, Relaxed);
                        incoming.refuse(); // a flood: no handshake for a reason nobody reads
                    } else {
                        tokio::spawn(accept.clone().refuse_full(incoming, cap));
                    }
                    continue;
                }
                let core = accept.clone();
                tokio::spawn(async move {
                    core.clone().serve(incoming).await;
                    core.admitted.fetch_sub(1, Relaxed);
                });
            }
        });
        Ok(Zipper { core, recv_buffer })
    }

    /// The UDP receive buffer the kernel granted, and the one asked for (bytes): below
    /// the ask, a burst of datagrams (thousands of clients closing at once) may overflow.
    #[getter]
    fn recv_buffer(&self) -> (usize, usize) {
        (self.recv_buffer, UDP_RECV_BUFFER)
    }

    /// The bound `(host, port)`.
    #[getter]
    fn address(&self) -> (String, u16) {
        self.core.local.get().map(|a| (a.ip().to_canonical().to_string(), a.port())).unwrap_or_default()
    }

    fn rearm(&self) {
        self.core.waker.rearm();
    }

    /// Everything that happened since the last call, as tuples:
    /// `("handshake", id, frame, (host, port))`, `("refused", (host, port), kind, reason)`,
    /// `("closed", number, reason, protocol_error)`, `("dead", number, silent_s, backlog)`,
    /// `("slow", number, dropped, backlog)`,
    /// `("tap", tag, metadata, frame)`.
    fn take_events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let events: Vec<Event> = self.core.events.lock().drain(..).collect();
        let list = PyList::empty(py);
        for e in events {
            let item = match e {
                Event::Handshake { id, frame, addr } => {
                    ("handshake", id, PyBytes::new(py, &frame), addr_tuple(addr)).into_pyobject(py)?.into_any()
                }
                Event::Refused { addr, kind, reason } => {
                    ("refused", addr_tuple(addr), kind, reason).into_pyobject(py)?.into_any()
                }
                Event::Closed { number, reason, protocol_error } => {
                    ("closed", number, reason, protocol_error).into_pyobject(py)?.into_any()
                }
                Event::Dead { number, silent, backlog } => {
                    ("dead", number, silent, backlog).into_pyobject(py)?.into_any()
                }
                Event::SlowConsumer { number, dropped, backlog } => {
                    ("slow", number, dropped, backlog).into_pyobject(py)?.into_any()
                }
                Event::Tap { tag, metadata, frame } => {
                    self.core.tap_bytes.fetch_sub(frame.len(), Relaxed);
                    ("tap", tag, PyBytes::new(py, &metadata), PyBytes::new(py, &frame)).into_pyobject(py)?.into_any()
                }
            };
            list.append(item)?;
        }
        Ok(list)
    }

    /// Register handshake `id` as connection `number` and send `reply` (the ack).
    /// `client_id` is the id of the handshake (`<client id>-<n>`, for re-sent frames).
    #[pyo3(signature = (id, number, client_type, tags, wanted_target, merge, reply, client_id=String::new()))]
    #[allow(clippy::too_many_arguments)]
    fn accept(
        &self,
        id: u64,
        number: u64,
        client_type: u8,
        tags: Vec<u32>,
        wanted_target: String,
        merge: Vec<(String, String)>,
        reply: &[u8],
        client_id: String,
    ) -> bool {
        let Some(tx) = self.core.pending.lock().remove(&id) else { return false };
        tx.send(Decision::Accept {
            number,
            client_id,
            client_type,
            tags,
            target: wanted_target,
            merge,
            reply: Bytes::copy_from_slice(reply),
        })
        .is_ok()
    }

    /// Refuse handshake `id`: send `reply` (a RejectedFrame) if given, then close with `reason`.
    #[pyo3(signature = (id, reply, reason))]
    fn reject(&self, id: u64, reply: Option<&[u8]>, reason: String) {
        if let Some(tx) = self.core.pending.lock().remove(&id) {
            let _ = tx.send(Decision::Reject { reply: reply.map(Bytes::copy_from_slice), reason });
        }
    }

    /// Queue an encoded frame for connection `number` (a GoawayFrame); False if it is gone.
    fn send_to(&self, number: u64, frame: &[u8]) -> bool {
        let peer = self.core.peers.read().get(&number).cloned();
        peer.is_some_and(|p| p.outbox.push(Bytes::copy_from_slice(frame)).is_some())
    }

    /// Close connection `number` with `reason`.
    fn close_connection(&self, number: u64, reason: String) {
        if let Some(p) = self.core.peers.read().get(&number) {
            p.conn.close(CLOSE_CODE.into(), reason.as_bytes());
        }
    }

    /// Per connection number: `(frames_in, frames_out, dropped, send_backlog, recv_backlog, (host, port))`.
    fn connections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (n, p) in self.core.peers.read().iter() {
            let row = (
                p.frames_in.load(Relaxed),
                p.frames_out.load(Relaxed),
                p.dropped.load(Relaxed),
                p.outbox.backlog(),
                p.recv_backlog.load(Relaxed),
                addr_tuple(p.conn.remote_address()),
            );
            out.set_item(n, row)?;
        }
        Ok(out)
    }

    /// Totals and per-tag counters: `{"rejections", "protocol_errors", "drops",
    /// "unobserved", "tags_overflow", "tap_dropped", "tags": {tag: (frames_in, bytes_in,
    /// frames_out, bytes_out, unobserved, dropped)}}`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.core.stats;
        let out = PyDict::new(py);
        out.set_item("rejections", s.rejections.load(Relaxed))?;
        out.set_item("protocol_errors", s.protocol_errors.load(Relaxed))?;
        out.set_item("drops", s.drops.load(Relaxed))?;
        out.set_item("unobserved", s.unobserved.load(Relaxed))?;
        out.set_item("tags_overflow", s.tags_overflow.load(Relaxed))?;
        out.set_item("tap_dropped", self.core.tap_dropped.load(Relaxed))?;
        out.set_item("resent_duplicates", self.core.resend.duplicates.load(Relaxed))?;
        let tags = PyDict::new(py);
        for (t, c) in s.tags() {
            let row = PyTuple::new(py, [c.frames_in, c.bytes_in, c.frames_out, c.bytes_out, c.unobserved, c.dropped])?;
            tags.set_item(t, row)?;
        }
        out.set_item("tags", tags)?;
        Ok(out)
    }

    /// Hand every routed frame that did not come from a mesh peer to Python as "tap"
    /// events (for `Zipper.add_forwarder`), or stop.
    fn set_tap(&self, on: bool) {
        self.core.tap.store(on, Relaxed);
    }

    /// Forward local frames to mesh peer `name` over `conn` (None: the link is down).
    #[pyo3(signature = (name, conn, max_queue_bytes))]
    fn set_link(&self, name: String, conn: Option<PyRef<'_, Connection>>, max_queue_bytes: usize) {
        let shared = conn.map(|c| c.shared.clone());
        let mut links = self.core.links.write();
        match links.iter().find(|l| l.name == name) {
            Some(link) => link.set_conn(shared),
            None => {
                let link = Arc::new(MeshLink::new(name, max_queue_bytes));
                link.set_conn(shared);
                links.push(link);
            }
        }
    }

    /// Stop forwarding to mesh peer `name`.
    fn remove_link(&self, name: &str) {
        self.core.links.write().retain(|l| l.name != name);
    }

    /// `(forwarded, bytes_forwarded, dropped_queue_full, dropped_link_down, queued_bytes,
    /// dropped_unacknowledged)`.
    fn link_stats(&self, name: &str) -> Option<(u64, u64, u64, u64, usize, u64)> {
        let links = self.core.links.read();
        let l = links.iter().find(|l| l.name == name)?;
        Some((
            l.forwarded.load(Relaxed),
            l.bytes_forwarded.load(Relaxed),
            l.dropped_queue_full.load(Relaxed),
            l.dropped_link_down.load(Relaxed),
            l.queued_bytes(),
            l.dropped_unacknowledged.load(Relaxed),
        ))
    }

    /// Close every connection with `reason` and stop accepting.
    /// Make every connection's peer hear what was received so far: an ack-eliciting frame
    /// each, which carries the pending acknowledgements (quinn delays them up to 25 ms).
    /// Called a moment before `stop`, so that clients know which of their frames arrived
    /// and re-send none of them on their next connection.
    fn flush_acks(&self) {
        // quinn's window on the zipper side (credit.rs read_ahead), never the larger
        // connection window: a nudge must not lift a not yet registered peer past it
        let window = self.core.settings.read_ahead(Side::Zipper);
        // a registered connection's window may be lowered (a held producer): its credit
        // nudges it; the others still have the configured read-ahead
        let mut nudged = std::collections::HashSet::new();
        for p in self.core.peers.read().values() {
            p.credit.nudge(&p.conn);
            nudged.insert(p.conn.stable_id());
        }
        for conn in self.core.live.lock().values() {
            if !nudged.contains(&conn.stable_id()) {
                nudge(conn, window);
            }
        }
    }

    fn stop(&self, reason: String) {
        let core = &self.core;
        core.stopped.store(true, Relaxed);
        core.pending.lock().clear();
        for conn in core.live.lock().values() {
            conn.close(CLOSE_CODE.into(), reason.as_bytes());
        }
        if let Some(ep) = core.endpoint.lock().as_ref() {
            ep.set_server_config(None);
        }
    }

    /// After `stop`: close the socket and wait (bounded, off the GIL) until it is released
    /// (the endpoint's driver owns the socket and ends once no handle and no connection
    /// is left).
    fn close_socket(&self, py: Python<'_>, timeout: f64) {
        let Some(ep) = self.core.endpoint.lock().take() else { return };
        let addr = self.core.local.get().copied();
        py.detach(|| {
            runtime().block_on(async move {
                ep.close(0u32.into(), b"");
                let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(timeout);
                let _ = tokio::time::timeout_at(deadline, ep.wait_idle()).await;
                drop(ep);
                // the driver drops the socket on its next turn: wait until the port is free
                while let Some(a) = addr {
                    if std::net::UdpSocket::bind(a).is_ok() || tokio::time::Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        });
    }
}

fn addr_tuple(a: SocketAddr) -> (String, u16) {
    (a.ip().to_canonical().to_string(), a.port())
}
