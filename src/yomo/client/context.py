"""The serverless Context handed to stream-function handlers.

Go: core/serverless/context.go. ``ctx.write`` sends a DataFrame carrying the
metadata of the frame being handled (same tid, source id and trace), so a
chain of functions keeps one transaction. Writing ``None`` is a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

from yomo.wire import TARGET, check_tag, encode_data_frame, encode_metadata

__all__ = ["AsyncContext", "Context", "CronContext", "Payload", "build_frame", "json_payload"]

Payload = bytes | bytearray | memoryview
"""What ``write`` accepts as data: any bytes-like object (copied when it is not ``bytes``)."""

Sender = Callable[[bytes], Awaitable[None]]


def json_payload(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON, the payload of every ``write_json``."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def build_frame(tag: int, data: Any, metadata: Mapping[str, str]) -> bytes | None:
    """Check ``tag`` and ``data`` and encode the frame; None when ``data`` is None.

    Raises:
        ValueError: the tag is out of range or reserved.
        TypeError: ``data`` is not bytes-like.
    """
    check_tag(tag)
    if data is None:
        return None
    if isinstance(data, str):
        raise TypeError("yomo: data must be bytes-like, got str (encode it first, e.g. .encode())")
    try:
        # memoryview accepts only the buffer protocol: bytes(42) would be 42 zero bytes
        payload = data if isinstance(data, bytes) else memoryview(data).tobytes()
    except TypeError:
        raise TypeError(f"yomo: data must be bytes-like, got {type(data).__name__}") from None
    return encode_data_frame(tag, encode_metadata(metadata), payload)


class _BaseContext:
    __slots__ = ("_data", "_metadata", "_tag")

    def __init__(self, tag: int, data: bytes, metadata: dict[str, str]) -> None:
        self._tag = tag
        self._data = data
        self._metadata = metadata

    @property
    def tag(self) -> int:
        """The tag of the frame being handled."""
        return self._tag

    @property
    def data(self) -> bytes:
        """The payload of the frame being handled."""
        return self._data

    @property
    def metadata(self) -> Mapping[str, str]:
        """The frame's metadata (read-only): ``yomo-tid``, ``yomo-source-id``, ..."""
        return MappingProxyType(self._metadata)

    @property
    def tid(self) -> str:
        """The transaction id shared by every frame of one original write."""
        return self._metadata.get("yomo-tid", "")

    @property
    def source_id(self) -> str:
        """The id of the source that first wrote the data."""
        return self._metadata.get("yomo-source-id", "")

    def json(self) -> Any:
        """The payload decoded as JSON."""
        return json.loads(self._data)

    def _frame(self, tag: int, data: Any, target: str | None) -> bytes | None:
        md = self._metadata
        if target:
            md = dict(md)
            md[TARGET] = target
        return build_frame(tag, data, md)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} tag=0x{self._tag:x} {len(self._data)} bytes>"


class AsyncContext(_BaseContext):
    """The Context of an ``async def`` handler: ``await ctx.write(tag, data)``."""

    __slots__ = ("_send",)

    def __init__(self, tag: int, data: bytes, metadata: dict[str, str], send: Sender) -> None:
        super().__init__(tag, data, metadata)
        self._send = send

    async def write(self, tag: int, data: Payload | None) -> None:
        """Write ``data`` under ``tag``, keeping this frame's tid, source id and trace."""
        frame = self._frame(tag, data, None)
        if frame is not None:
            await self._send(frame)

    async def write_with_target(self, tag: int, data: Payload | None, target: str) -> None:
        """Write to the stream functions whose wanted target is ``target`` only."""
        frame = self._frame(tag, data, target)
        if frame is not None:
            await self._send(frame)

    async def write_json(self, tag: int, obj: Any) -> None:
        """Write ``obj`` encoded as JSON."""
        await self.write(tag, json_payload(obj))


class Context(_BaseContext):
    """The Context of a synchronous handler (runs on a worker thread); ``write`` blocks."""

    __slots__ = ("_send_blocking",)

    def __init__(
        self,
        tag: int,
        data: bytes,
        metadata: dict[str, str],
        send_blocking: Callable[[bytes], None],
    ) -> None:
        super().__init__(tag, data, metadata)
        self._send_blocking = send_blocking

    def write(self, tag: int, data: Payload | None) -> None:
        """Write ``data`` under ``tag``, keeping this frame's tid, source id and trace."""
        frame = self._frame(tag, data, None)
        if frame is not None:
            self._send_blocking(frame)

    def write_with_target(self, tag: int, data: Payload | None, target: str) -> None:
        """Write to the stream functions whose wanted target is ``target`` only."""
        frame = self._frame(tag, data, target)
        if frame is not None:
            self._send_blocking(frame)

    def write_json(self, tag: int, obj: Any) -> None:
        """Write ``obj`` encoded as JSON."""
        self.write(tag, json_payload(obj))


class CronContext:
    """Given to a cron handler: it may ``write`` (a fresh tid per run, like Go)."""

    def __init__(self, metadata: dict[str, str], write: Callable[[int, Any, dict[str, str]], Any]):
        self._metadata = metadata
        self._write = write

    @property
    def metadata(self) -> Mapping[str, str]:
        """This run's metadata (source id and a fresh tid)."""
        return MappingProxyType(self._metadata)

    def write(self, tag: int, data: Payload | None) -> Any:
        """Write ``data`` under ``tag`` (a coroutine for async cron handlers)."""
        return self._write(tag, data, self._metadata)
