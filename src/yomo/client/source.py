"""The asyncio Source: writes ``(tag, bytes)`` to a zipper.

Go: source.go. Each write gets a fresh tid and carries the source id; with a
tracer provider it also starts a span. ``write`` waits (bounded by
``write_timeout``) while the zipper is not reading instead of buffering
without limit.
"""

from __future__ import annotations

import logging
from typing import Any

from yomo._signals import wait_on_signals
from yomo.session import ClientCore, ClientState, ErrorHandler, ReconnectPolicy, new_id
from yomo.transport import QuicSettings, TlsConfig
from yomo.wire import SOURCE_ID, TARGET, TID, ClientType
from yomo.wire.metadata import source_metadata_encoder

from .context import Payload, build_frame, json_payload
from .tracing import Tracing

__all__ = ["AsyncSource"]


class AsyncSource:
    """A YoMo source on asyncio (``yomo.aio.Source``).

    Args:
        name: the source's name, shown in the zipper's logs.
        zipper_addr: ``host:port`` of the zipper.
        credential: ``"token:<secret>"`` when the zipper has auth.
        tls: certificates; defaults to the ``YOMO_TLS_*`` variables.
        quic: QUIC settings; defaults to Go's client values.
        reconnect: backoff policy for broken connections.
        write_timeout: seconds a write may wait for the zipper before raising.
        logger: defaults to ``logging.getLogger("yomo")``.
        tracer_provider: an OpenTelemetry tracer provider to trace writes.
    """

    def __init__(
        self,
        name: str,
        zipper_addr: str = "localhost:9000",
        *,
        credential: str | None = None,
        tls: TlsConfig | None = None,
        quic: QuicSettings | None = None,
        reconnect: ReconnectPolicy | None = None,
        write_timeout: float = 30.0,
        logger: logging.Logger | None = None,
        tracer_provider: Any | None = None,
    ) -> None:
        self._core = ClientCore(
            name,
            zipper_addr,
            ClientType.SOURCE,
            credential=credential,
            tls=tls,
            quic=quic,
            reconnect=reconnect,
            write_timeout=write_timeout,
            logger=logger,
        )
        self.log = self._core.log
        self._tracing = Tracing(tracer_provider, name, scope="Source")
        self._metadata = source_metadata_encoder(self._core.client_id)

    @property
    def name(self) -> str:
        """The source's name."""
        return self._core.name

    @property
    def client_id(self) -> str:
        """The id written as ``yomo-source-id`` into every frame."""
        return self._core.client_id

    @property
    def state(self) -> ClientState:
        """Where the source is in its life."""
        return self._core.state

    def set_error_handler(self, fn: ErrorHandler) -> None:
        """Call ``fn(error)`` when the connection fails or the zipper rejects the source."""
        self._core.add_error_handler(fn)

    async def connect(self) -> None:
        """Connect and handshake.

        Raises:
            RejectedError: the zipper rejected the source (final).
            ConnectError: the zipper stayed unreachable for the connect timeout.
        """
        await self._core.connect()

    async def write(self, tag: int, data: Payload | None) -> None:
        """Write ``data`` under ``tag``; ``None`` is a no-op.

        Raises:
            ValueError: the tag is outside 0..0xFFFFFFFF or reserved (0xF000..0xFFFF).
            TypeError: ``data`` is not bytes-like.
            TimeoutError: the zipper could not take it within ``write_timeout``.
        """
        # _write inlined: this is the per-frame path (one coroutine, then one append)
        frame = self._frame(tag, data, None)
        if frame is not None:
            await self._core.send(frame)

    async def write_with_target(self, tag: int, data: Payload | None, target: str) -> None:
        """Write only to the stream functions whose wanted target is ``target``."""
        await self._write(tag, data, target)

    async def write_json(self, tag: int, obj: Any) -> None:
        """Write ``obj`` encoded as compact JSON (UTF-8), like ``Context.write_json``.

        Raises:
            TypeError: ``obj`` is not JSON-serializable; as ``write`` otherwise.
        """
        await self._write(tag, json_payload(obj), None)

    async def _write(self, tag: int, data: Payload | None, target: str | None) -> None:
        frame = self._frame(tag, data, target)
        if frame is not None:
            await self._core.send(frame)

    def _frame(self, tag: int, data: Payload | None, target: str | None) -> bytes | None:
        """Encode one write: a fresh tid, this source's id, the target and the trace."""
        if not target and not self._tracing.enabled:  # the common case, without a dict
            return build_frame(tag, data, self._metadata(new_id()))
        md = {SOURCE_ID: self._core.client_id, TID: new_id()}
        if target:
            md[TARGET] = target
        if self._tracing.enabled:
            with self._tracing.span(self.name, md, tag=tag):
                return build_frame(tag, data, md)
        return build_frame(tag, data, md)

    async def close(self) -> None:
        """Send what was written and close (idempotent)."""
        await self._core.close()

    async def wait(self) -> None:
        """Wait until the source is closed; SIGINT or SIGTERM closes it (Go's ``Wait``).

        Signals are taken on the main thread where the program has no handlers of its
        own (see ``yomo._signals``).
        """
        await wait_on_signals(self._core.wait(), self.close, self.log, f"source {self.name!r}")

    async def __aenter__(self) -> AsyncSource:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
