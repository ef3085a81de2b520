"""Listening for YoMo clients with the qh3 or aioquic backend.

qh3 on Linux listens through its batched (recvmmsg/GSO) UDP transport and
shares the socket with an aioquic server for clients qh3 cannot serve; a zipper
with mutual TLS runs on aioquic alone. Either way the socket's datagrams enter
through ``_Entry``, which hands an established connection's datagrams straight
to it.
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


class _Entry(asyncio.DatagramProtocol):
    """The zipper's UDP socket: each datagram to its connection, or to a server.

    A datagram of a known connection (a short header whose destination id is in a
    server's table) goes straight to that connection: the server would parse its
    header a second time to find the same table entry. Handshake packets and unknown
    ids go to a server, which makes new connections.

    With a second server the socket is shared: qh3 for most clients, aioquic for
    empty client ids. qh3 2.1 cannot serve a client whose source connection id is
    empty: the handshake fails ("initial_source_connection_id does not match") and
    its replies go to the client's original destination id. quic-go, so every Go
    YoMo client, uses empty ids; aioquic serves them fine. A datagram goes to the
    server that owns its destination id; a new connection goes to aioquic when its
    first packet carries an empty source id, to qh3 otherwise.
    """

    def __init__(self, fast: Any, compat_server: Any | None, cid_length: int) -> None:
        self.fast = fast
        self.compat = compat_server
        self._fast_ids = compat.server_protocols(fast)
        self._compat_ids: dict[bytes, Any] = (
            compat.server_protocols(compat_server) if compat_server is not None else {}
        )
        self._cid_length = cid_length
        self._transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        self.fast.connection_made(transport)
        if self.compat is not None:
            self.compat.connection_made(transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data and data[0] & 0xC0 == 0x40:  # short header (fixed bit set): a connection's
            dcid = bytes(data[1 : 1 + self._cid_length])
            protocol = self._fast_ids.get(dcid)
            if protocol is None and self._compat_ids:
                protocol = self._compat_ids.get(dcid)
            if protocol is not None:
                protocol.datagram_received(data, addr)
                return
        self._route(data).datagram_received(data, addr)

    def _route(self, data: bytes) -> Any:
        """The server for a handshake packet, or for an id no connection has."""
        if self.compat is None:
            return self.fast
        compat_ids = self._compat_ids
        if len(data) > 6 and data[0] & 0x80:  # long header: DCID length at byte 5
            end = 6 + data[5]
            dcid = bytes(data[6:end])
            if dcid in compat_ids:
                return self.compat
            if dcid in self._fast_ids:
                return self.fast
            return self.compat if end < len(data) and data[end] == 0 else self.fast
        return self.fast

    def close(self) -> None:
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
    """Listen through an ``_Entry``; with qh3 on Linux through its batched
    (recvmmsg/GSO) UDP transport.

    With ``split`` (an aioquic config and protocol factory) the socket is shared
    with an aioquic server for clients qh3 cannot serve.
    """
    server_class = importlib.import_module(f"{backend.name}.asyncio.server").QuicServer

    def factory() -> _Entry:
        server = server_class(configuration=config, create_protocol=create_protocol)
        index_connection_ids(server)
        other = None
        if split is not None:
            aioquic_server = importlib.import_module("aioquic.asyncio.server").QuicServer
            other = aioquic_server(configuration=split[0], create_protocol=split[1])
            index_connection_ids(other)
        return _Entry(server, other, config.connection_id_length)

    optimized = compat.optimized_datagram_transport() if backend.name == "qh3" else None
    if optimized is not None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            enlarge_buffers(sock)
            sock.bind((host, port))
            _, entry = await optimized(asyncio.get_running_loop(), factory, sock=sock)
        except BaseException:  # not listening after all: give the socket back, re-raise
            sock.close()
            raise
        return entry
    transport, entry = await asyncio.get_running_loop().create_datagram_endpoint(
        factory, local_addr=(host, port)
    )
    enlarge_buffers(transport.get_extra_info("socket"))
    return entry


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
