"""Dialling a zipper with the qh3 or aioquic backend."""

from __future__ import annotations

import contextlib
from typing import Any

from yomo.errors import ConnectionClosedError

from . import _compat as compat
from ._backends import Backend, configuration
from ._common import in_background, keep_alive_interval, retrieve
from ._errors import map_quic_errors
from ._frame_connection import FrameConnection
from ._setup import apply_client_tls, open_dialled
from .settings import QuicSettings
from .tls import TlsConfig

__all__ = ["dial"]


async def dial(
    host: str, port: int, *, tls: TlsConfig, settings: QuicSettings, backend: Backend
) -> FrameConnection:
    """Connect to a zipper (``yomo.transport.dial`` has the contract)."""
    config = configuration(
        backend.configuration, settings, is_client=True, server_name=host, qlog=backend.name
    )
    apply_client_tls(config, tls)
    created: dict[Any, FrameConnection] = {}  # protocol -> its connection (protocol.conn
    # is cleared when the connection ends)

    def create_protocol(*args: Any, **kwargs: Any) -> Any:
        protocol = backend.protocol_class(*args, **kwargs)
        protocol.conn = created[protocol] = FrameConnection(protocol, settings, is_client=True)
        return protocol

    async def failed(stack: contextlib.AsyncExitStack) -> str | None:
        reason = None
        for protocol, conn in created.items():
            waiter = compat.connected_waiter(protocol)
            if waiter is not None:  # its ConnectionError is ours to report, not asyncio's
                waiter.add_done_callback(retrieve)
            with contextlib.suppress(ConnectionClosedError), map_quic_errors(ConnectionClosedError):
                protocol.quic.close()
            # the abandoned connect's cleanup runs in the background: let it skip the
            # draining wait (seconds without an RTT sample) and release the socket now
            compat.mark_closed(protocol)
            if reason is None and conn.close_reason:
                reason = conn.close_reason  # what the zipper said, e.g. a TLS alert
        in_background(stack.aclose(), 3.0)
        return reason

    connect = backend.connect(host, port, configuration=config, create_protocol=create_protocol)

    def answered() -> bool:
        return any(compat.heard_from_peer(protocol.quic) for protocol in created)

    protocol, stack = await open_dialled(
        connect, host, port, settings=settings, failed=failed, answered=answered
    )
    conn = created[protocol]
    conn.exit_stack = stack
    conn.start_keep_alive(keep_alive_interval(settings))
    return conn
