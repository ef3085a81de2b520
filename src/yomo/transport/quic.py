"""The pure-Python QUIC data path: ``listen`` and ``dial`` on qh3, aioquic or aiopquic.

This module picks the backend and hands over to the module that serves it;
the parts live one job per module:

* ``_frame_connection`` ``FrameConnection`` (a connection's stream as frames),
  over ``_buffer`` (buffering and backpressure as plain objects);
* ``_protocol`` the qh3/aioquic asyncio protocol; ``_backends`` loading and
  choosing qh3 or aioquic; ``_server`` / ``_client`` their listen and dial;
* ``_aiopquic`` / ``_aiopquic_setup`` the optional picoquic backend;
* ``_setup`` the listen and dial steps all backends share; ``_errors`` the one
  place QUIC-library errors become yomo errors; ``_compat`` every use of a
  library's private names, with the versions it was checked against.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from . import _client, _server
from ._backends import backend_name, load_backend, resolve_backend
from ._frame_connection import FrameConnection
from ._setup import Listener, ListenSpec, server_certificate
from .settings import (
    ALPN,
    CLOSE_CODE,
    DEFAULT_CLIENT_SETTINGS,
    DEFAULT_ZIPPER_SETTINGS,
    QuicSettings,
)
from .tls import TlsConfig

__all__ = [
    "ALPN",
    "CLOSE_CODE",
    "DEFAULT_CLIENT_SETTINGS",
    "DEFAULT_ZIPPER_SETTINGS",
    "FrameConnection",
    "Listener",
    "QuicSettings",
    "backend_info",
    "dial",
    "listen",
]

# qh3 logs every normal close by the peer as a WARNING ("Native peer close");
# the transport reports closes itself, so keep the library to errors unless
# the application configured its logger.
_quic_log = logging.getLogger("quic")
if _quic_log.level == logging.NOTSET:
    _quic_log.setLevel(logging.ERROR)


def backend_info(name: str | None = None) -> str:
    """``"qh3 2.1.0"``: the QUIC library a new connection would use."""
    name = backend_name(name)
    if name == "aiopquic":
        from . import _aiopquic

        return f"{name} {_aiopquic.version()}"
    b = load_backend(name)
    return f"{b.name} {b.version}"


async def listen(
    host: str,
    port: int,
    on_connection: Callable[[FrameConnection], Awaitable[None]],
    *,
    tls: TlsConfig | None = None,
    settings: QuicSettings = DEFAULT_ZIPPER_SETTINGS,
) -> Listener:
    """Listen for YoMo clients; ``on_connection`` runs as a task per connection.

    The task starts once the QUIC/TLS handshake is done (and, with mutual TLS,
    the client certificate verified); the connection is closed when it returns.

    Raises:
        TransportError: the address cannot be bound, or the backend cannot serve ``tls``.
    """
    tls = tls or TlsConfig.from_env()
    name = resolve_backend(settings, tls, server=True)
    cert_file, key_file = server_certificate(host, tls)
    spec = ListenSpec(host, port, on_connection, tls, settings, cert_file, key_file)
    if name == "aiopquic":  # optional backend, in its own modules
        from . import _aiopquic_setup

        return await _aiopquic_setup.listen(spec)
    return await _server.listen(spec, load_backend(name))


async def dial(
    host: str,
    port: int,
    *,
    tls: TlsConfig | None = None,
    settings: QuicSettings = DEFAULT_CLIENT_SETTINGS,
) -> FrameConnection:
    """Connect to a zipper and return the frame connection (handshake done).

    Raises:
        ConnectError: the zipper did not answer within ``handshake_timeout`` or TLS failed.
        TransportError: the backend is unknown or not installed.
    """
    tls = tls or TlsConfig.from_env()
    name = resolve_backend(settings, tls, server=False)
    if name == "aiopquic":  # optional backend, in its own modules
        from . import _aiopquic_setup

        return await _aiopquic_setup.dial(host, port, tls=tls, settings=settings)
    return await _client.dial(host, port, tls=tls, settings=settings, backend=load_backend(name))
