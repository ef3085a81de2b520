"""Listening and dialling with the optional aiopquic backend (``_aiopquic.py`` has the notes).

A zipper's connections share one picoquic engine, so a reader that falls far
behind stops the engine for everyone (``_Brake``), bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import socket
from typing import Any

from yomo.errors import ListenError, TransportError

from . import _compat as compat
from ._aiopquic import NAME, SERVER_BRAKE_SECONDS, AiopquicConnection, aiopquic_configuration, load
from ._errors import map_quic_errors
from ._frame_connection import FrameConnection
from ._setup import ConnectionTasks, Listener, ListenSpec, apply_client_tls, open_dialled
from .settings import QuicSettings
from .tls import TlsConfig

__all__ = ["dial", "listen"]

log = logging.getLogger("yomo.transport")


class _Brake:
    """Stops a zipper's engine from taking events while a connection is over its cap."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.server: Any = None  # aiopquic's QuicServer, once listening
        self.closed = False
        self._held: dict[AiopquicConnection, asyncio.TimerHandle] = {}
        self._stopped = False

    def engage(self, conn: AiopquicConnection) -> None:
        """Stop taking events for everyone until ``conn`` reads (bounded in time)."""
        conn.braking = self
        self._held[conn] = self._loop.call_later(SERVER_BRAKE_SECONDS, self._expire, conn)
        engine = compat.aiopquic_engine(self.server)
        if not self._stopped and engine is not None and not self.closed:
            self._stopped = True
            with contextlib.suppress(ValueError, OSError):  # its fd already closed
                self._loop.remove_reader(engine.eventfd)

    def release(self, conn: AiopquicConnection) -> None:
        """``conn`` caught up or closed: take events again if no one else holds the brake."""
        conn.braking = None
        timer = self._held.pop(conn, None)
        if timer is not None:
            timer.cancel()
        if self._stopped and not self._held:
            self._stopped = False
            engine = compat.aiopquic_engine(self.server)
            if engine is not None and not self.closed and engine.eventfd >= 0:
                self._loop.add_reader(engine.eventfd, self._drain)
                self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        # aiopquic's own reader, except that nothing is taken while stopped
        engine = compat.aiopquic_engine(self.server)
        if not self._stopped and not self.closed and engine is not None:
            engine.drain_and_route()

    def _expire(self, conn: AiopquicConnection) -> None:
        self._held.pop(conn, None)
        conn.abort(
            f"stopped reading with {conn.recv_backlog} bytes unread for "
            f"{SERVER_BRAKE_SECONDS:g} s; the aiopquic backend cannot hold back one "
            "client of a zipper alone"
        )  # _on_terminated releases the brake

    def close(self) -> None:
        self.closed = True
        for timer in self._held.values():
            timer.cancel()
        self._held.clear()
        if self.server is not None:
            self.server.close()


class _Server:
    """What ``Listener`` closes: the brake, then aiopquic's server."""

    def __init__(self, brake: _Brake) -> None:
        self._brake = brake

    def close(self) -> None:
        self._brake.close()


def _family(host: str) -> int | None:
    if host in ("", "::"):
        return None
    if host == "localhost":
        return socket.AF_INET
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


def _free_port(family: int | None) -> int:
    fam = socket.AF_INET6 if family == socket.AF_INET6 else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as sock:
        sock.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
        return int(sock.getsockname()[1])


async def listen(spec: ListenSpec) -> Listener:
    """Listen for YoMo clients with aiopquic (``yomo.transport.listen`` has the contract)."""
    host, port, tls, settings = spec.host, spec.port, spec.tls, spec.settings
    if tls.verify_peer:
        raise TransportError(
            "mutual TLS on the zipper needs the aioquic backend (aiopquic cannot "
            "request client certificates)"
        )
    lib = load()
    family = _family(host)
    config = aiopquic_configuration(settings, is_client=False, server_name=None, family=family)
    config.load_cert_chain(spec.cert_file, spec.key_file)
    config.max_connections = settings.max_connections  # aiopquic's own default is 256
    tasks = ConnectionTasks(spec.on_connection)
    brake = _Brake(asyncio.get_running_loop())

    def handshake_done(protocol: Any) -> None:
        conn = protocol.conn
        if conn is not None and not conn.closed:
            tasks.start(conn)

    def create_protocol(quic: Any, stream_handler: Any = None) -> Any:
        protocol = lib.protocol_class(quic, stream_handler=stream_handler)
        protocol.conn = AiopquicConnection(protocol, settings, is_client=False)
        protocol.on_handshake = handshake_done
        protocol.brake = brake
        return protocol

    attempts = 5 if port == 0 else 1
    for attempt in range(attempts):
        bind_port = port or _free_port(family)
        try:
            with map_quic_errors(functools.partial(_cannot_listen, f"{host}:{bind_port}")):
                server = await lib.serve(
                    host, bind_port, configuration=config, create_protocol=create_protocol
                )
        except ListenError:
            if attempt + 1 < attempts:  # the free port was taken meanwhile: another one
                continue
            raise
        break
    if host not in ("", "0.0.0.0", "::"):
        log.info(
            "aiopquic listens on every %s address, not only %s",
            "IPv6" if family == socket.AF_INET6 else "IPv4",
            host,
        )
    brake.server = server
    return Listener(_Server(brake), (host, bind_port), tls.mode, f"{NAME} {lib.version}")


def _cannot_listen(where: str, detail: str) -> ListenError:
    return ListenError(f"cannot listen on {where}: {detail}")


async def dial(host: str, port: int, *, tls: TlsConfig, settings: QuicSettings) -> FrameConnection:
    """Connect to a zipper with aiopquic (``yomo.transport.dial`` has the contract)."""
    lib = load()
    config = aiopquic_configuration(settings, is_client=True, server_name=host, family=None)
    apply_client_tls(config, tls)

    def create_protocol(quic: Any, stream_handler: Any = None) -> Any:
        protocol = lib.protocol_class(quic, stream_handler=stream_handler)
        protocol.conn = AiopquicConnection(protocol, settings, is_client=True)
        return protocol

    async def failed(stack: contextlib.AsyncExitStack) -> str | None:
        # closing a connection that never opened: bounded, and nothing to report
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(stack.aclose(), 1.0)
        return None

    connect = lib.connect(host, port, configuration=config, create_protocol=create_protocol)
    protocol, stack = await open_dialled(connect, host, port, settings=settings, failed=failed)
    conn: AiopquicConnection = protocol.conn
    conn.exit_stack = stack
    return conn
