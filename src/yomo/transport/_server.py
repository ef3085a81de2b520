"""Listening for YoMo clients with the qh3 or aioquic backend.

qh3 on Linux listens through its batched (recvmmsg/GSO) UDP transport and
shares the socket with an aioquic server for clients qh3 cannot serve
(``_SplitServer``); a zipper with mutual TLS runs on aioquic alone.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from yomo.errors import ListenError, YomoError

from . import _compat as compat
from ._backends import Backend, configuration, load_backend
from ._cids import index_connection_ids
from ._common import keep_alive_interval
from ._errors import map_quic_errors
from ._frame_connection import FrameConnection
from ._lane import SlowLane
from ._setup import ConnectionTasks, Listener, ListenSpec
from .tls import TlsConfig

__all__ = ["listen"]

log = logging.getLogger("yomo.transport")
#: Bytes of UDP socket buffer the zipper asks for (quic-go's 7 MiB; Linux caps it
#: at net.core.rmem_max / wmem_max). With the default ~208 KiB a zipper holding a
#: few thousand connections dropped tens of thousands of datagrams (their ACKs of
#: its keep-alive PINGs among them) and the connections died of idle timeout.
SOCKET_BUFFER = 7 * 1024 * 1024


async def listen(spec: ListenSpec, backend: Backend) -> Listener:
    """Listen for YoMo clients (``yomo.transport.listen`` has the contract)."""
    host, port, tls, settings = spec.host, spec.port, spec.tls, spec.settings

    def server_config(b: Backend) -> Any:
        config = configuration(
            b.configuration, settings, is_client=False, server_name=None, qlog=b.name
        )
        config.load_cert_chain(spec.cert_file, spec.key_file)
        if tls.verify_peer:
            config.cafile = tls.ca_file
            config.verify_mode = ssl.CERT_REQUIRED
        return config

    tasks = ConnectionTasks(spec.on_connection)

    def handshake_done(protocol: Any) -> None:
        conn = protocol.conn
        if conn is None:
            return
        if tls.verify_peer:
            problem = _verify_client_certificate(protocol, tls)
            if problem is not None:
                log.warning("rejected client %s: %s", conn.remote_address, problem)
                conn.close(problem)
                return
        conn.start_keep_alive(keep_alive_interval(settings))
        tasks.start(conn)

    def protocol_factory(b: Backend) -> Callable[..., Any]:
        def create_protocol(*args: Any, **kwargs: Any) -> Any:
            protocol = b.protocol_class(*args, **kwargs)
            protocol.conn = FrameConnection(protocol, settings, is_client=False)
            protocol.on_handshake = handshake_done
            if tls.verify_peer:
                compat.request_client_certificate(protocol.quic)
            return protocol

        return create_protocol

    config, create_protocol = server_config(backend), protocol_factory(backend)
    split: tuple[Any, Any] | None = None
    if backend.name == "qh3":
        aioquic = load_backend("aioquic")  # a dependency: serves clients with empty ids
        split = (server_config(aioquic), protocol_factory(aioquic))

    def cannot_listen(detail: str) -> ListenError:
        return ListenError(f"cannot listen on {host}:{port}: {detail}")

    with map_quic_errors(cannot_listen):
        server = await _serve(backend, host, port, config, create_protocol, split)
    sockname = compat.server_transport(server).get_extra_info("sockname")
    name = backend.name if split is None else f"{backend.name} (+aioquic for empty client ids)"
    return Listener(server, (str(sockname[0]), int(sockname[1])), tls.mode, name)


class _SplitServer(asyncio.DatagramProtocol):
    """One UDP socket, two QUIC servers: qh3 for most clients, aioquic for empty client ids.

    qh3 2.1 cannot serve a client whose source connection id is empty: the
    handshake fails ("initial_source_connection_id does not match") and its
    replies go to the client's original destination id. quic-go, so every Go
    YoMo client, uses empty ids; aioquic serves them fine. A datagram goes to
    the server that owns its destination id; a new connection goes to aioquic
    when its first packet carries an empty source id, to qh3 otherwise. Quiet
    connections' datagrams wait in the slow lane (``_lane``) while others go first.
    """

    def __init__(self, fast: Any, compat_server: Any, cid_length: int) -> None:
        self.fast = fast
        self.compat = compat_server
        self._fast_ids = compat.server_protocols(fast)
        self._compat_ids = compat.server_protocols(compat_server)
        self._cid_length = cid_length
        self._transport: Any = None
        self.lane = SlowLane(self._deliver)

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        self.fast.connection_made(transport)
        self.compat.connection_made(transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) <= self._cid_length or data[0] & 0x80:  # a runt (even empty), long header
            self._route(data).datagram_received(data, addr)
            return
        # An established connection's packet (short header: its id right after the
        # first byte). It goes to its protocol directly, as both servers would pass
        # it on after parsing the header again (~2 µs with qh3); a quiet
        # connection's waits in the lane.
        cid = bytes(data[1 : 1 + self._cid_length])
        protocol = self._fast_ids.get(cid) or self._compat_ids.get(cid)
        if protocol is None:
            self.fast.datagram_received(data, addr)  # unknown: the server drops it
            return
        conn = protocol.conn
        if conn is not None:
            moved = conn.bytes_received + conn.bytes_sent
            if protocol.lane_waiting:  # behind its earlier ones
                if self.lane.offer(protocol, data, addr):
                    return
            elif moved != protocol.lane_moved or not moved:
                # stream bytes since the last look, or no YoMo handshake yet: active
                # (the per-frame path: no clock read, no call)
                protocol.lane_moved = moved
                protocol.lane_active = 0.0
            elif self.lane.offer(protocol, data, addr):
                return
        protocol.datagram_received(data, addr)

    def _deliver(self, data: bytes, addr: Any, arrived: float) -> None:
        """Process a datagram the lane held (looked up again: its connection may be gone).

        QUIC sees it at ``arrived``, when it was read: the wait in the lane must
        not count as round-trip time (docs/transport.md).
        """
        cid = bytes(data[1 : 1 + self._cid_length])
        protocol = self._fast_ids.get(cid) or self._compat_ids.get(cid)
        if protocol is not None:
            protocol.receive_at(data, addr, arrived)

    def _route(self, data: bytes) -> Any:
        compat_ids = self._compat_ids
        if len(data) > 6 and data[0] & 0x80:  # long header: DCID length at byte 5
            end = 6 + data[5]
            dcid = bytes(data[6:end])
            if dcid in compat_ids:
                return self.compat
            if dcid in self._fast_ids:
                return self.fast
            return self.compat if end < len(data) and data[end] == 0 else self.fast
        if compat_ids and bytes(data[1 : 1 + self._cid_length]) in compat_ids:
            return self.compat
        return self.fast

    def close(self) -> None:
        self.lane.close()
        for ids in (self._fast_ids, self._compat_ids):
            for protocol in set(ids.values()):
                protocol.close()
            ids.clear()
        self._transport.close()


async def _serve(
    backend: Backend,
    host: str,
    port: int,
    config: Any,
    create_protocol: Any,
    split: tuple[Any, Any] | None = None,
) -> Any:
    """Listen; with qh3 on Linux through its batched (recvmmsg/GSO) UDP transport.

    With ``split`` (an aioquic config and protocol factory) the socket is shared
    with an aioquic server for clients qh3 cannot serve (``_SplitServer``).
    """
    if backend.name == "qh3":

        def factory() -> Any:
            server = importlib.import_module("qh3.asyncio.server").QuicServer(
                configuration=config, create_protocol=create_protocol
            )
            index_connection_ids(server)
            return server

        if split is not None:
            qh3_factory = factory
            aioquic_server = importlib.import_module("aioquic.asyncio.server").QuicServer

            def factory() -> Any:
                other = aioquic_server(configuration=split[0], create_protocol=split[1])
                index_connection_ids(other)
                return _SplitServer(qh3_factory(), other, split[0].connection_id_length)

        optimized = compat.optimized_datagram_transport()
        if optimized is not None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                enlarge_buffers(sock)
                sock.bind((host, port))
                _, server = await optimized(asyncio.get_running_loop(), factory, sock=sock)
            except BaseException:  # not listening after all: give the socket back, re-raise
                sock.close()
                raise
            return server
        if split is not None:
            transport, server = await asyncio.get_running_loop().create_datagram_endpoint(
                factory, local_addr=(host, port)
            )
            enlarge_buffers(transport.get_extra_info("socket"))
            return server
    server = await backend.serve(host, port, configuration=config, create_protocol=create_protocol)
    index_connection_ids(server)
    enlarge_buffers(compat.server_transport(server).get_extra_info("socket"))
    return server


def enlarge_buffers(sock: Any, size: int = SOCKET_BUFFER) -> int:
    """Ask for ``size`` bytes of receive and send buffer on the zipper's UDP socket.

    Returns the receive buffer the kernel granted; logs once when it is smaller
    (quic-go warns the same way; raise net.core.rmem_max to allow more).
    """
    if sock is None:
        return 0
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
        except OSError:
            pass
    got = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    if got < size and not _warned:
        _warned.append(got)
        log.info(
            "UDP receive buffer %d KiB (wanted %d KiB; net.core.rmem_max limits it)",
            got // 1024,
            size // 1024,
        )
    return got


_warned: list[int] = []


def _verify_client_certificate(protocol: Any, tls: TlsConfig) -> str | None:
    """Why the client's certificate is not accepted (mutual TLS), or None when it is."""
    cert, chain = compat.peer_certificate(protocol.quic)
    if cert is None:
        return "mutual TLS: the client presented no certificate"
    from aioquic.tls import verify_certificate

    try:
        with map_quic_errors(YomoError):
            verify_certificate(certificate=cert, chain=chain, cafile=tls.ca_file)
    except YomoError as exc:
        return f"mutual TLS: client certificate not trusted: {exc.message}"
    return None
