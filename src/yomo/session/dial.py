"""One handshake on a fresh connection: send the HandshakeFrame, read the answer, judge it.

Go: core/client.go connect and handleConnectResult. The answer is judged by the
sans-IO table in ``handshake.py``; this module only does the I/O and leaves no
connection open behind a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol

from yomo.errors import ConnectError, ConnectionClosedError, ProtocolError
from yomo.transport import QuicSettings, TlsConfig
from yomo.transport.connection import Connection
from yomo.wire import HandshakeFrame

from .handshake import ClientHandshake

__all__ = ["Dialer", "handshake"]


class Dialer(Protocol):
    """Opens a connection to a zipper: ``yomo.transport.dial``, or an in-memory one in tests."""

    def __call__(
        self, host: str, port: int, *, tls: TlsConfig | None, settings: QuicSettings
    ) -> Awaitable[Connection]: ...


async def handshake(
    conn: Connection, hello: HandshakeFrame, *, zipper: str, timeout: float
) -> Connection:
    """Send ``hello`` on ``conn`` and wait (``timeout`` s) for the zipper's acknowledgement.

    Returns:
        ``conn``, acknowledged.

    Raises:
        ConnectError: no answer in time, or the zipper closed the connection.
        RejectedError, ConnectToError: the zipper's answer (see ``ClientHandshake``).
        ProtocolError: the zipper sent bytes that are no frame.
        Every error leaves ``conn`` closed.
    """
    table = ClientHandshake(hello)
    try:
        conn.send_nowait(table.start())
        reply = await asyncio.wait_for(conn.read_frame(), timeout)
    except asyncio.TimeoutError as exc:
        await conn.aclose("handshake timeout")
        raise ConnectError(f"zipper {zipper} did not answer the handshake in time") from exc
    except ConnectionClosedError as exc:
        await conn.aclose()
        raise ConnectError(
            f"zipper {zipper} closed the connection during the handshake: {exc.reason}"
        ) from exc
    except ProtocolError:
        await conn.aclose()
        raise
    except BaseException:  # cancelled mid-handshake: don't leave the connection open
        conn.close("client closed")
        raise
    try:
        table.receive(reply)
    except BaseException:
        await conn.aclose()
        raise
    return conn
