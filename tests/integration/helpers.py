"""Helpers for integration tests: clients, inboxes, raw connections and bounded waits.

Every wait is bounded: ``eventually`` polls a condition and fails with a description.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from support.zippers import PLAIN_TLS
from yomo._version import SPEC_VERSION
from yomo.client.core import ClientCore, ReconnectPolicy
from yomo.transport import FrameConnection, QuicSettings, TlsConfig, dial
from yomo.wire import (
    ClientType,
    DataFrame,
    Frame,
    HandshakeFrame,
    decode_metadata,
    encode_data_frame,
    encode_metadata,
)
from yomo.zipper.server import Zipper

__all__ = [
    "FAST_RECONNECT",
    "PLAIN_TLS",
    "Clients",
    "Inbox",
    "Pair",
    "Raw",
    "eventually",
    "frame_bytes",
    "md_of",
    "seq_of",
    "seq_payload",
]

#: Clients in tests redial quickly and give up connecting quickly.
FAST_RECONNECT = ReconnectPolicy(initial_delay=0.05, max_delay=0.3, connect_timeout=3.0)


async def eventually(
    condition: Callable[[], bool], what: str = "condition", timeout: float = 5.0
) -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.005)


def frame_bytes(tag: int, payload: bytes, md: dict[str, str] | None = None) -> bytes:
    """An encoded DataFrame."""
    return encode_data_frame(tag, encode_metadata(md or {}), payload)


def seq_payload(i: int, size: int = 0) -> bytes:
    """Payload carrying sequence number ``i``, padded to ``size`` bytes."""
    head = b"%08d" % i
    return head + b"." * max(0, size - len(head))


def seq_of(frame: DataFrame) -> int:
    """The sequence number in a ``seq_payload`` payload."""
    return int(bytes(frame.payload[:8]))


def md_of(frame: DataFrame) -> dict[str, str]:
    """A frame's metadata, decoded."""
    return decode_metadata(frame.metadata)


@dataclass
class Inbox:
    """An ``on_frame`` callback that keeps what arrives; optionally stalls on a gate."""

    frames: list[DataFrame] = field(default_factory=list)
    gate: asyncio.Event | None = None
    handler: Callable[[DataFrame], Awaitable[None]] | None = None

    async def __call__(self, frame: DataFrame) -> None:
        self.frames.append(frame)
        if self.handler is not None:
            await self.handler(frame)
        if self.gate is not None:
            await self.gate.wait()

    def tags(self) -> list[int]:
        return [f.tag for f in self.frames]

    def payloads(self, tag: int | None = None) -> list[bytes]:
        return [bytes(f.payload) for f in self.frames if tag is None or f.tag == tag]

    def seqs(self, tag: int | None = None) -> list[int]:
        return [seq_of(f) for f in self.frames if tag is None or f.tag == tag]

    def count(self, tag: int | None = None) -> int:
        return sum(1 for f in self.frames if tag is None or f.tag == tag)

    async def wait_count(self, n: int, tag: int | None = None, timeout: float = 5.0) -> None:
        """Wait until ``n`` frames (of ``tag``) have arrived."""
        await eventually(
            lambda: self.count(tag) >= n,
            f"{n} frames of tag {tag} (have {self.count(tag)})",
            timeout,
        )

    async def wait_payload(self, payload: bytes, timeout: float = 5.0) -> None:
        """Wait until a frame with this payload has arrived."""
        await eventually(
            lambda: any(bytes(f.payload) == payload for f in self.frames),
            f"a frame with payload {payload!r}",
            timeout,
        )


class Clients:
    """Connects ClientCore clients to a zipper; closes them all at teardown."""

    def __init__(self) -> None:
        self.all: list[ClientCore] = []

    def make(
        self,
        z: Zipper | str,
        name: str,
        client_type: int,
        *,
        tags: Sequence[int] = (),
        inbox: Inbox | None = None,
        **options: Any,
    ) -> ClientCore:
        """A ClientCore (not connected yet) for zipper ``z`` (or a ``host:port``)."""
        options.setdefault("tls", PLAIN_TLS)
        options.setdefault("reconnect", FAST_RECONNECT)
        options.setdefault("write_timeout", 10.0)
        addr = z if isinstance(z, str) else z.addr
        core = ClientCore(
            name, addr, client_type, observe_data_tags=tags, on_frame=inbox, **options
        )
        self.all.append(core)
        return core

    async def source(self, z: Zipper | str, name: str = "source", **options: Any) -> ClientCore:
        """A connected source."""
        core = self.make(z, name, ClientType.SOURCE, **options)
        await core.connect()
        return core

    async def sfn(
        self, z: Zipper | str, name: str, tags: Sequence[int], **options: Any
    ) -> tuple[ClientCore, Inbox]:
        """A connected stream function observing ``tags`` and its inbox."""
        inbox = options.pop("inbox", None) or Inbox()
        core = self.make(z, name, ClientType.STREAM_FUNCTION, tags=tags, inbox=inbox, **options)
        await core.connect()
        return core, inbox

    async def close_all(self) -> None:
        for core in self.all:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(core.close(drain_timeout=0.5), 3.0)


class Raw:
    """Bare QUIC connections to a zipper, for writing frames and bytes by hand."""

    def __init__(self) -> None:
        self.all: list[FrameConnection] = []

    async def dial(
        self, z: Zipper, *, tls: TlsConfig = PLAIN_TLS, settings: QuicSettings | None = None
    ) -> FrameConnection:
        host, port = z.address
        conn = await dial(host, port, tls=tls, settings=settings or QuicSettings())
        self.all.append(conn)
        return conn

    async def handshake(
        self,
        z: Zipper,
        *,
        name: str = "raw",
        id: str = "raw-id-0",
        client_type: int = ClientType.SOURCE,
        tags: Sequence[int] = (),
        version: str = SPEC_VERSION,
        auth_name: str = "",
        auth_payload: str = "",
        wanted_target: str = "",
        tls: TlsConfig = PLAIN_TLS,
    ) -> tuple[FrameConnection, Frame]:
        """Dial, send a HandshakeFrame and return the connection and the zipper's reply."""
        conn = await self.dial(z, tls=tls)
        conn.send_nowait(
            HandshakeFrame(
                name=name,
                id=id,
                client_type=client_type,
                observe_data_tags=tuple(tags),
                auth_name=auth_name,
                auth_payload=auth_payload,
                version=version,
                wanted_target=wanted_target,
            )
        )
        reply = await asyncio.wait_for(conn.read_frame(), 5.0)
        return conn, reply

    async def close_all(self) -> None:
        for conn in self.all:
            with contextlib.suppress(Exception):
                await conn.aclose("test done")


class Pair:
    """A well-behaved source -> stream function pair on one tag, to prove traffic flows.

    ``send(n)`` writes the next ``n`` numbered frames; ``check()`` waits until the
    function has every frame sent so far, once each and in order.
    """

    def __init__(self, source: ClientCore, inbox: Inbox, tag: int) -> None:
        self.source = source
        self.inbox = inbox
        self.tag = tag
        self.sent = 0

    @classmethod
    async def start(cls, clients: Clients, z: Zipper | str, tag: int, name: str = "pair") -> Pair:
        _, inbox = await clients.sfn(z, f"{name}-sfn", [tag])
        source = await clients.source(z, f"{name}-src")
        return cls(source, inbox, tag)

    async def send(self, n: int, size: int = 0) -> None:
        for _ in range(n):
            await self.source.send(frame_bytes(self.tag, seq_payload(self.sent, size)))
            self.sent += 1

    async def check(self, timeout: float = 5.0) -> None:
        await self.inbox.wait_count(self.sent, self.tag, timeout)
        assert self.inbox.seqs(self.tag) == list(range(self.sent))
