"""The asyncio Source: writes ``(tag, bytes)`` to a zipper.

Go: source.go. Each write gets a fresh tid and carries the source id; with a
tracer provider it also starts a span. ``write`` waits (bounded by
``write_timeout``) while the zipper is not reading instead of buffering
without limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from yomo._signals import wait_on_signals
from yomo.session import ClientCore, new_id
from yomo.session.options import ClientKeywords, ClientOptions
from yomo.wire import (
    MAX_TAG,
    RESERVED_TAG_MAX,
    RESERVED_TAG_MIN,
    SOURCE_ID,
    TARGET,
    TID,
    ClientType,
)
from yomo.wire.frames import data_frame_encoder
from yomo.wire.metadata import TID_SIZE, source_metadata_encoder, source_metadata_head

from .base import ClientBase
from .context import Payload, build_frame, json_payload
from .tracing import Tracing

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AsyncSource"]


class AsyncSource(ClientBase):
    """A YoMo source on asyncio (``yomo.aio.Source``).

    Args:
        name: the source's name, shown in the zipper's logs.
        zipper_addr: ``host:port`` of the zipper.
        options: a whole ``yomo.ClientOptions``; keyword arguments change fields of it.
        credential, tls, quic, reconnect, write_timeout, logger, tracer_provider: the
            fields of ``yomo.ClientOptions`` (see there): the credential, certificates,
            QUIC settings, redial backoff, how long a write may wait for the zipper,
            the logger and an OpenTelemetry tracer provider to trace writes.
    """

    def __init__(
        self,
        name: str,
        zipper_addr: str = "localhost:9000",
        *,
        options: ClientOptions | None = None,
        **keywords: Unpack[ClientKeywords],
    ) -> None:
        options = ClientOptions.build(options, keywords)
        self._core = ClientCore(name, zipper_addr, ClientType.SOURCE, options=options)
        self.log = self._core.log
        self._tracing = Tracing(options.tracer_provider, name, scope="Source")
        self._metadata = source_metadata_encoder(self._core.client_id)
        # the common write (no target, no tracing): the frame but its tid built once per tag
        self._plain = not self._tracing.enabled
        self._encode = data_frame_encoder(source_metadata_head(self._core.client_id), TID_SIZE)

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
        # the per-frame path: this coroutine and an append; checks and encoding inlined
        if (
            type(data) is bytes
            and type(tag) is int
            and (0 <= tag < RESERVED_TAG_MIN or RESERVED_TAG_MAX < tag <= MAX_TAG)
            and self._plain
        ):
            frame = self._encode(tag, new_id().encode(), data)
            room = self._core.put_nowait(frame)
            if room is None:  # no connection: send waits (bounded) for one
                await self._core.send(frame)
            elif not room:
                await self._core.wait_room()
            return
        await self._write(tag, data, None)

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
