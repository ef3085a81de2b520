"""Every use of a QUIC library's private names, in one place.

qh3, aioquic and aiopquic keep parts YoMo needs (the unsent and unacknowledged
bytes of a stream, the peer's close before its draining period ends, the peer's
idle timeout, mutual TLS, the server's connection-id table, batched UDP) behind
underscore names. Each function below is the only place one of them is read or
written, and ``tests/unit/test_transport_compat.py`` has one test per function
(named after it), so a library upgrade that moves a name fails a named test
instead of a connection at run time.

Checked against the versions in ``CHECKED_VERSIONS``. Protocol hooks the
subclasses override (``_process_events``, ``datagram_received``) are listed in
``OVERRIDDEN_HOOKS`` and tested for presence the same way.

Over 400 lines on purpose: the point is one module holding every private name.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any

__all__ = [
    "CHECKED_VERSIONS",
    "OVERRIDDEN_HOOKS",
    "aiopquic_connected",
    "aiopquic_engine",
    "aiopquic_eventfd_reader",
    "aiopquic_handshake_done",
    "aiopquic_handshake_failed",
    "bytes_in_flight",
    "close_event",
    "connected_waiter",
    "datagrams_to_send",
    "forget_timer",
    "heard_from_peer",
    "install_cid_table",
    "loop_of",
    "mark_closed",
    "optimized_datagram_transport",
    "peer_certificate",
    "peer_idle_timeout",
    "process_events",
    "protocol_closed",
    "quic_of",
    "release_terminated",
    "remote_address",
    "request_client_certificate",
    "retrieve_ping_waiters",
    "server_protocols",
    "server_transport",
    "transmit_batched",
    "transmit_qh3",
    "transmit_soon",
    "transport_lost",
    "unacked_stream_bytes",
    "unsent_stream_bytes",
]

#: The library versions every function here was read against and tested with.
CHECKED_VERSIONS = {"qh3": "2.1.0", "aioquic": "1.7.2", "aiopquic": "0.6.1"}

#: Private protocol methods our protocol subclasses override or call on ``super()``.
OVERRIDDEN_HOOKS = {
    "qh3": ("_process_events", "_transmit_soon", "_handle_timer"),
    "aioquic": ("_process_events", "_transmit_soon", "_handle_timer"),
    "aiopquic": ("_process_events", "_on_eventfd"),
}


# --- the asyncio protocol (QuicConnectionProtocol, all three libraries) ----------


def quic_of(protocol: Any) -> Any:
    """The protocol's sans-IO ``QuicConnection``."""
    return protocol._quic


def loop_of(protocol: Any) -> Any:
    """The protocol's event loop (aiopquic: None until the connection starts)."""
    return protocol._loop


def process_events(protocol: Any) -> None:
    """Hand the QUIC connection's queued events to ``quic_event_received``."""
    protocol._process_events()


def transmit_soon(protocol: Any) -> None:
    """Send pending datagrams once this event-loop turn ends (one batch for a burst)."""
    protocol._transmit_soon()


def forget_timer(protocol: Any) -> None:
    """Forget the protocol's timer that just fired without handling it (the next
    ``transmit`` arms it again for the connection's next deadline)."""
    protocol._timer = None
    protocol._timer_at = None


def mark_closed(protocol: Any) -> None:
    """Tell the protocol it is closed, so its ``wait_closed`` skips the draining wait."""
    closed = getattr(protocol, "_closed", None)
    if isinstance(closed, asyncio.Event):
        closed.set()


def protocol_closed(protocol: Any) -> bool:
    """True once the protocol knows its connection is closed."""
    closed = getattr(protocol, "_closed", None)
    return isinstance(closed, asyncio.Event) and closed.is_set()


def _no_connection_id(cid: bytes) -> None:
    """The protocol's connection-id handlers once its connection is gone."""


def _nothing() -> None:
    """The protocol's termination handler once it has run."""


#: The TLS context's callbacks (bound methods of qh3's ``QuicTlsBridge`` or of aioquic's
#: ``QuicConnection``, each pointing back at its owner).
_TLS_CALLBACKS = (
    "alpn_cb",
    "get_session_ticket_cb",
    "new_session_ticket_cb",
    "update_traffic_key_cb",
)


def release_terminated(protocol: Any) -> None:
    """Break the reference cycles a terminated connection's library objects form, so
    reference counting frees them as soon as we drop them (no wait for the cycle
    collector: issue 17's mass close, see docs/transport.md).

    The server set three handler partials holding the protocol on it (and has
    called the termination one by now); qh3's ``QuicConnection`` and its
    ``QuicTlsBridge`` point at each other (``version_change_handler``), and the TLS
    context holds its owner's bound methods as callbacks. None of them is called
    after ``ConnectionTerminated``: the connection does no more TLS. (aioquic's
    ``QuicConnection`` keeps cycles of its own, its frame handlers among them: its
    connections still need the collector.)
    """
    protocol._connection_id_issued_handler = _no_connection_id
    protocol._connection_id_retired_handler = _no_connection_id
    protocol._connection_terminated_handler = _nothing
    quic = protocol._quic
    bridge = getattr(quic, "_tls", None)  # qh3
    if bridge is not None:
        bridge._version_change_handler = None
    context = getattr(quic, "tls", None)  # qh3: the bridge's context; aioquic: its own
    for name in _TLS_CALLBACKS:
        if getattr(context, name, None) is not None:
            setattr(context, name, None)


def transport_lost(protocol: Any) -> None:
    """qh3: forget a dialled connection's own transport once it is closed.

    qh3's batched transport keeps its protocol after ``connection_lost`` (asyncio's
    own transports drop theirs), so protocol and transport would be cyclic garbage.
    The protocol's timer and pending transmit go too: there is no socket to send on.
    """
    for name in ("_timer", "_transmit_task"):
        handle = getattr(protocol, name, None)
        if handle is not None:
            handle.cancel()
            setattr(protocol, name, None)
    protocol._timer_at = None
    protocol._transport = None
    protocol._sendto_many = None


def connected_waiter(protocol: Any) -> asyncio.Future[Any] | None:
    """The future ``wait_connected`` waits on (None when nobody waits)."""
    waiter: asyncio.Future[Any] | None = getattr(protocol, "_connected_waiter", None)
    return waiter


#: ``tls.State.CLIENT_EXPECT_SERVER_HELLO`` in qh3 and aioquic (the same numbering).
_EXPECT_SERVER_HELLO = 1


def heard_from_peer(quic: Any) -> bool:
    """True once a client connection got the server's answer (its TLS is past ServerHello)."""
    state = getattr(getattr(quic, "tls", None), "state", None)
    return state is not None and int(getattr(state, "value", state)) > _EXPECT_SERVER_HELLO


def retrieve_ping_waiters(protocol: Any, retrieve: Callable[[Any], None]) -> None:
    """Add ``retrieve`` to every ping still waiting (they fail when the connection dies)."""
    for waiter in list(getattr(protocol, "_ping_waiters", {}).values()):
        waiter.add_done_callback(retrieve)


#: qh3 2.x's reason when the next packet does not fit what it may send now.
QH3_NO_ROOM = "packet builder capacity exhausted"


def datagrams_to_send(quic: Any, now: float) -> list[tuple[bytes, Any]]:
    """The datagrams due now: the library's ``datagrams_to_send``, but for qh3 2.x a
    packet that does not fit the anti-amplification allowance ends the burst.

    Before a client's address is validated a server may send only three times what it
    received (RFC 9000 section 8.1). qh3 2.1's core sizes the next packet to what is
    left of that allowance and, when its first queued frame (a CRYPTO frame cut for a
    1,280-byte datagram) does not fit the remainder, raises "packet builder capacity
    exhausted" instead of waiting: aioquic clients, whose 1,200-byte Initial leaves a
    remainder qh3 clients' 1,280-byte one does not, met it on every connection (the
    already built datagrams of the call were dropped with the exception and the timer
    was not re-armed, so the handshake waited for the client's retransmission: ERROR
    tracebacks in the zipper log, connects of 0.7-1.9 s). The build is transactional
    (nothing is consumed), so during the handshake this means "nothing more until the
    peer sends again"; after it the error is unexpected and raised as before.
    """
    core = getattr(quic, "_core", None)
    if core is None or not hasattr(core, "poll_transmit"):
        return list(quic.datagrams_to_send(now=now))
    out: list[tuple[bytes, Any]] = []
    while True:
        try:
            transmit = quic._call_core(core.poll_transmit, now)  # qh3's errors, as qh3 raises
        except Exception as exc:
            if getattr(exc, "reason_phrase", None) == QH3_NO_ROOM and not quic._handshake_complete:
                return out
            raise
        if transmit is None:
            return out
        quic._log_datagram("datagrams_sent", transmit[0])
        quic._log_packets("packet_sent", transmit[0])
        out.append((transmit[0], transmit[1]))


def transmit_batched(protocol: Any) -> bool:
    """aioquic's ``transmit`` through a batched ``sendto_many`` transport; False if none.

    aioquic sends one ``sendto`` per datagram; behind the zipper's shared qh3 socket
    the whole burst goes to qh3's batched sender (GSO/sendmmsg) instead. The timer
    is re-armed as ``transmit`` does.
    """
    send_many = getattr(protocol._transport, "sendto_many", None)
    if send_many is None:
        return False
    loop = protocol._loop
    protocol._transmit_task = None
    quic = protocol._quic
    batch: list[bytes] = []
    batch_addr: Any = None
    for data, addr in datagrams_to_send(quic, loop.time()):
        if batch and addr != batch_addr:
            send_many(batch, batch_addr)
            batch = []
        batch.append(data)
        batch_addr = addr
    if batch:
        send_many(batch, batch_addr)
    _arm_timer(protocol, quic, loop)
    return True


def transmit_qh3(protocol: Any) -> None:
    """qh3's ``transmit`` (send what is due, batched when the transport can, then
    re-arm the timer) through ``datagrams_to_send`` above."""
    protocol._transmit_task = None
    if protocol._transport is None:  # transport_lost: no socket left
        return
    loop = protocol._loop
    quic = protocol._quic
    datagrams = datagrams_to_send(quic, loop.time())
    send_many = protocol._sendto_many
    if send_many is None:
        sendto = protocol._transport.sendto
        for data, addr in datagrams:
            sendto(data, addr)
    else:
        start = 0
        for i in range(1, len(datagrams) + 1):
            if i == len(datagrams) or datagrams[i][1] != datagrams[start][1]:
                send_many([d for d, _ in datagrams[start:i]], datagrams[start][1])
                start = i
    _arm_timer(protocol, quic, loop)


def _arm_timer(protocol: Any, quic: Any, loop: Any) -> None:
    """Re-arm the protocol's timer for the connection's next deadline (as ``transmit`` does)."""
    timer_at = quic.get_timer()
    timer: Any = getattr(protocol, "_timer", None)
    if timer is not None and getattr(protocol, "_timer_at", None) != timer_at:
        timer.cancel()
        timer = None
    if timer is None and timer_at is not None:
        timer = loop.call_at(timer_at, protocol._handle_timer)
    protocol._timer = timer
    protocol._timer_at = timer_at


# --- the sans-IO connection (QuicConnection, qh3 and aioquic) --------------------


def remote_address(quic: Any) -> Any:
    """The peer's address as the library keeps it (qh3: one, aioquic: its first path)."""
    addr = getattr(quic, "_remote_addr", None)  # qh3
    if addr is None:
        paths = getattr(quic, "_network_paths", None)  # aioquic
        addr = paths[0].addr if paths else None
    return addr


def unsent_stream_bytes(quic: Any, stream_id: int) -> int:
    """Bytes queued on a stream that have not been sent yet."""
    getter = getattr(quic, "get_send_buffer_size", None)  # qh3: public
    if getter is not None:
        return int(getter(stream_id))
    stream = quic._streams.get(stream_id)  # aioquic
    if stream is None:
        return 0
    sender = stream.sender
    return int(sender._buffer_stop - sender.next_offset)


def bytes_in_flight(quic: Any) -> int | None:
    """qh3: bytes sent on the connection and not acknowledged (None for aioquic)."""
    core = getattr(quic, "_core", None)
    if core is not None and hasattr(core, "bytes_in_flight"):
        return int(core.bytes_in_flight)
    return None


def unacked_stream_bytes(quic: Any, stream_id: int) -> int:
    """aioquic: bytes of a stream queued or sent and not acknowledged yet."""
    stream = getattr(quic, "_streams", {}).get(stream_id)
    if stream is None:
        return 0
    sender = stream.sender
    return int(sender._buffer_stop - sender._buffer_start)


def close_event(quic: Any) -> tuple[str, int] | None:
    """``(reason phrase, error code)`` of a close, as soon as it is known.

    Both libraries report a peer's CONNECTION_CLOSE as an event only after the
    draining period (about 3 PTO); the pending event is readable at once.
    """
    event = getattr(quic, "_close_event", None)
    if event is None:
        return None
    return (str(event.reason_phrase or ""), int(event.error_code))


def peer_idle_timeout(quic: Any) -> float | None:
    """The peer's max_idle_timeout in seconds, once its transport parameters are known."""
    seconds = getattr(quic, "_remote_max_idle_timeout", None)  # aioquic
    if seconds:
        return float(seconds)
    params = getattr(getattr(quic, "_tls", None), "remote_transport_parameters", None)  # qh3
    millis = getattr(params, "max_idle_timeout", None)
    if millis:
        return float(millis) / 1000
    return None


def request_client_certificate(quic: Any) -> None:
    """Make an aioquic server connection ask the client for a certificate (mutual TLS).

    aioquic has the handshake step but no public switch; its TLS context is made
    when the first packet arrives, so the flag is set right after that.
    """
    initialize = quic._initialize

    def _initialize(*args: Any, **kwargs: Any) -> None:
        initialize(*args, **kwargs)
        quic.tls._request_client_certificate = True

    quic._initialize = _initialize


def peer_certificate(quic: Any) -> tuple[Any, list[Any]]:
    """aioquic: the client's certificate and chain (``(None, [])`` when none was shown)."""
    context = getattr(quic, "tls", None)
    cert = getattr(context, "_peer_certificate", None)
    chain = list(getattr(context, "_peer_certificate_chain", []))
    return cert, chain


# --- the servers (QuicServer of qh3 and aioquic) ---------------------------------


def server_protocols(server: Any) -> dict[bytes, Any]:
    """The server's connection id -> protocol table."""
    protocols: dict[bytes, Any] = server._protocols
    return protocols


def install_cid_table(server: Any, table: dict[bytes, Any], drop: Callable[[Any], None]) -> None:
    """Swap in ``table`` for the server's cid table; ``drop(protocol)`` runs on each close."""
    server._protocols = table
    server._connection_terminated = drop


def server_transport(server: Any) -> Any:
    """The server's datagram transport (None before it is bound)."""
    return getattr(server, "_transport", None)


def optimized_datagram_transport() -> Callable[..., Any] | None:
    """qh3's batched (recvmmsg/GSO) UDP transport factory, from a private module."""
    try:
        module = importlib.import_module("qh3.asyncio._transport")
    except ImportError:
        return None
    factory: Callable[..., Any] | None = getattr(
        module, "create_optimized_datagram_transport", None
    )
    return factory


# --- aiopquic -------------------------------------------------------------------


def aiopquic_engine(owner: Any) -> Any:
    """The shared picoquic engine of a zipper's server or connection (None when dialled)."""
    return getattr(owner, "_engine", None)


def aiopquic_eventfd_reader(protocol: Any) -> Callable[[], None]:
    """The protocol's reader callback for its connection's eventfd (as aiopquic adds it)."""
    reader: Callable[[], None] = protocol._on_eventfd
    return reader


def aiopquic_connected(quic: Any) -> bool:
    """True once the connection's handshake completed."""
    return bool(quic._connected)


def aiopquic_handshake_done(protocol: Any) -> None:
    """Wake ``wait_connected``: the handshake completed."""
    waiter = protocol._connected_waiter
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def aiopquic_handshake_failed(protocol: Any, exc: BaseException | None) -> None:
    """Mark the protocol closed and, with ``exc``, fail ``wait_connected`` with it."""
    protocol._closed.set()
    if exc is None:
        return
    protocol._handshake_error = exc
    waiter = protocol._connected_waiter
    if waiter is not None and not waiter.done():
        waiter.set_exception(exc)
