"""Listening and dialling steps every QUIC backend shares (qh3/aioquic and aiopquic).

``Listener`` and ``ConnectionTasks`` on the server side; TLS set-up of a dial
and ``open_dialled``, which runs the library's connect inside the transport's
error boundary, on the client side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from yomo.errors import ConnectError

from . import _compat as compat
from ._common import within
from ._errors import map_quic_errors
from ._frame_connection import FrameConnection
from .settings import QuicSettings
from .tls import TlsConfig, generate_self_signed

__all__ = [
    "ConnectionTasks",
    "ListenSpec",
    "Listener",
    "apply_client_tls",
    "open_dialled",
    "server_certificate",
]

log = logging.getLogger("yomo.transport")
#: Seconds a QUIC handshake may take once the zipper has answered, whatever
#: ``handshake_timeout`` says (``open_dialled``): QuicSettings' default bound.
ANSWERED_HANDSHAKE: float = QuicSettings.handshake_timeout


@dataclass(frozen=True)
class ListenSpec:
    """What a backend's ``listen`` is asked to serve (``yomo.transport.listen``'s arguments)."""

    host: str
    port: int
    on_connection: Callable[[FrameConnection], Awaitable[None]]
    tls: TlsConfig
    settings: QuicSettings
    cert_file: str
    key_file: str


class Listener:
    """A listening zipper socket; ``address`` is the bound ``(host, port)``."""

    def __init__(self, server: Any, address: tuple[str, int], tls_mode: str, backend: str) -> None:
        self._server = server
        self.address = address
        self.tls_mode = tls_mode
        self.backend = backend

    def close(self) -> None:
        """Stop accepting and close the socket (established connections are the caller's)."""
        self._server.close()

    async def aclose(self, timeout: float = 1.0) -> None:
        """Close, and wait (bounded) until the port is free again for a new listener."""
        transport = compat.server_transport(self._server)
        sock = transport.get_extra_info("socket") if transport is not None else None
        self._server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while sock is not None and sock.fileno() != -1 and loop.time() < deadline:
            await asyncio.sleep(0.005)


class ConnectionTasks:
    """Runs the zipper's ``on_connection`` as one task per accepted connection."""

    def __init__(self, on_connection: Callable[[FrameConnection], Awaitable[None]]) -> None:
        self._on_connection = on_connection
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()

    def start(self, conn: FrameConnection) -> None:
        """Run the handler for ``conn``; the connection is closed when it returns."""
        task = self._loop.create_task(self._run(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, conn: FrameConnection) -> None:
        try:
            await self._on_connection(conn)
        # Handler isolation: one connection's handler bug must not kill the listener.
        except Exception:
            log.exception("connection handler failed")
        finally:
            conn.close()


def server_certificate(host: str, tls: TlsConfig) -> tuple[str, str]:
    """The zipper's ``(cert_file, key_file)``: the configured pair, else a self-signed one."""
    if tls.cert_file and tls.key_file:
        return tls.cert_file, tls.key_file
    pair = generate_self_signed(host)
    return pair.cert_file, pair.key_file


def apply_client_tls(config: Any, tls: TlsConfig) -> None:
    """Set a dial's client certificate and server verification from ``tls``."""
    if tls.cert_file and tls.key_file:
        config.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.verify_peer:
        config.verify_mode = ssl.CERT_REQUIRED
        config.cafile = tls.ca_file
    else:
        config.verify_mode = ssl.CERT_NONE


async def open_dialled(
    connect: Any,
    host: str,
    port: int,
    *,
    settings: QuicSettings,
    failed: Callable[[contextlib.AsyncExitStack], Awaitable[str | None]],
    answered: Callable[[], bool] | None = None,
) -> tuple[Any, contextlib.AsyncExitStack]:
    """Enter the library's ``connect`` context, bounded by ``handshake_timeout``.

    ``failed(stack)`` cleans up after a failure and may return a better reason
    than the library's (the close reason the peer sent). ``answered()`` says
    whether the zipper has sent anything yet: a zipper that answers gets at least
    ``ANSWERED_HANDSHAKE`` s. A short ``handshake_timeout`` (a client's quick
    redials after a zipper restart) is meant to give up on a dead port, not on a
    restarted zipper whose first handshakes are slow on a busy machine: abandoning
    them and dialling again only adds work to it.

    Raises:
        ConnectError: no QUIC handshake in time, or the library failed to connect.
    """
    where = f"cannot connect to zipper {host}:{port}"
    stack = contextlib.AsyncExitStack()
    try:
        with map_quic_errors(lambda detail: ConnectError(f"{where}: {detail}")):
            entering = asyncio.ensure_future(stack.enter_async_context(connect))
            protocol = await within(
                entering,
                settings.handshake_timeout,
                answered=answered,
                grace=ANSWERED_HANDSHAKE,
            )
    except ConnectError as exc:
        heard = answered is not None and answered()
        reason = await failed(stack)
        cause = exc.__cause__
        if isinstance(cause, asyncio.TimeoutError):  # our bound, not the library's
            bound = max(settings.handshake_timeout, ANSWERED_HANDSHAKE if heard else 0.0)
            raise ConnectError(f"{where}: no QUIC handshake within {bound:.1f} s") from cause
        if reason:
            raise ConnectError(f"{where}: {reason}") from cause
        raise
    return protocol, stack
