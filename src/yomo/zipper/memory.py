"""Frame listeners: more ways in than QUIC (Go: ``WithFrameListener``, pkg/listener/mem).

A zipper built with ``listeners=[...]`` serves every connection a listener
accepts exactly like a QUIC one: handshake, authentication, routing, hooks.
:class:`MemoryListener` is Go's in-memory listener: ``await listener.dial()`` gives
a connection in the same process, with no QUIC and no sockets, which handshakes
with :meth:`MemoryConnection.handshake` and then reads and writes frames.

Both directions are bounded: a writer that is more than ``high_water`` bytes
ahead of its reader is told so (``has_room``) and ``write_frame``/``drain`` wait,
as on QUIC, so backpressure reaches the producer. Frames cross as encoded bytes
and are decoded (and checked) on the reading side, as if they had come over the
wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from typing import Protocol

from yomo.errors import ConnectionClosedError, HandshakeError, ProtocolError, TimeoutError
from yomo.session.handshake import ClientHandshake
from yomo.transport.connection import Connection
from yomo.wire import DEFAULT_MAX_FRAME_SIZE, Frame, HandshakeFrame, decode_frame

__all__ = ["DEFAULT_HIGH_WATER", "FrameListener", "MemoryConnection", "MemoryListener"]

#: Bytes one side may be ahead of the other before ``has_room`` is False.
DEFAULT_HIGH_WATER = 1024 * 1024


class FrameListener(Protocol):
    """Accepts frame connections for a zipper (Go: frame.Listener)."""

    async def accept(self) -> Connection:
        """The next connection; raises ``ConnectionClosedError`` once the listener is closed."""
        ...

    async def aclose(self) -> None:
        """Stop accepting and close every connection accepted (the zipper calls it on stop)."""
        ...


class _Channel:
    """One direction: encoded frames in order, their byte count, and who waits on them."""

    def __init__(self) -> None:
        self.frames: deque[bytes] = deque()
        self.bytes = 0
        self.readable = asyncio.Event()
        self.changed = asyncio.Event()  # set whenever the reader takes something, or on close

    def put(self, data: bytes) -> None:
        self.frames.append(data)
        self.bytes += len(data)
        self.readable.set()

    def take(self) -> bytes:
        data = self.frames.popleft()
        self.bytes -= len(data)
        if not self.frames:
            self.readable.clear()
        self.changed.set()
        return data


class _Shared:
    """What both ends of one memory connection see: whether it is closed, and why."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.closed = asyncio.Event()
        self.ends: list[MemoryConnection] = []


class MemoryConnection:
    """One end of an in-memory frame connection (Go: mem.FrameConn).

    It has the same members as a QUIC ``FrameConnection`` (``read_frame``,
    ``send_nowait``, ``write_frame``, ``drain``, ``close``, ...), so the zipper
    serves it like one.
    """

    def __init__(
        self,
        inbound: _Channel,
        outbound: _Channel,
        shared: _Shared,
        address: tuple[str, int],
        *,
        high_water: int = DEFAULT_HIGH_WATER,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self._in = inbound
        self._out = outbound
        self._shared = shared
        self._address = address
        self.high_water = high_water
        self.max_frame_size = max_frame_size
        self.closed_by_peer = False
        """True when the other end closed the connection."""
        shared.ends.append(self)

    # -- what the zipper (and any Connection user) reads ------------------------

    @property
    def close_reason(self) -> str | None:
        """Why the connection closed (None while it is open)."""
        return self._shared.reason

    @close_reason.setter
    def close_reason(self, reason: str | None) -> None:
        self._shared.reason = reason

    @property
    def closed(self) -> bool:
        return self._shared.closed.is_set()

    @property
    def has_room(self) -> bool:
        return self._out.bytes < self.high_water

    @property
    def send_backlog(self) -> int:
        return self._out.bytes

    @property
    def recv_backlog(self) -> int:
        return self._in.bytes

    @property
    def remote_address(self) -> tuple[str, int]:
        """``("memory", n)``: n numbers the connections of a listener."""
        return self._address

    def _closed_error(self) -> ConnectionClosedError:
        return ConnectionClosedError(self._shared.reason or "closed", remote=self.closed_by_peer)

    async def read_frame(self) -> Frame:
        """The next frame (what was written before a close is still read first).

        Raises:
            ConnectionClosedError: the connection is closed and nothing is left to read.
            RemoteProtocolError: the other end wrote bytes that are not a frame.
        """
        while not self._in.frames:
            if self.closed:
                raise self._closed_error()
            closed = asyncio.ensure_future(self._shared.closed.wait())
            readable = asyncio.ensure_future(self._in.readable.wait())
            try:
                await asyncio.wait({closed, readable}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closed.cancel()
                readable.cancel()
        try:
            return decode_frame(self._in.take(), max_frame_size=self.max_frame_size)
        except ProtocolError as exc:  # as on QUIC: bad bytes end the connection
            self.close(exc.message)
            raise

    def send_nowait(self, data: Frame | bytes) -> None:
        """Queue a frame for the other end; raises ConnectionClosedError once closed."""
        if self.closed:
            raise self._closed_error()
        self._out.put(data if isinstance(data, bytes) else data.encode())

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until the other end is less than ``high_water`` bytes behind.

        Raises:
            ConnectionClosedError: the connection closed first.
            TimeoutError: ``timeout`` seconds passed first.
        """
        await self._wait_for(lambda: self.has_room, timeout)

    async def write_frame(self, data: Frame | bytes, timeout: float | None = None) -> None:
        """``send_nowait`` then ``drain``."""
        self.send_nowait(data)
        await self.drain(timeout)

    async def drain_all(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until the other end has read everything written."""
        with contextlib.suppress(ConnectionClosedError, TimeoutError):
            await self._wait_for(lambda: self._out.bytes == 0, timeout)

    async def _wait_for(self, ready: object, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not ready():  # type: ignore[operator]
            if self.closed:
                raise self._closed_error()
            self._out.changed.clear()
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                raise TimeoutError(f"the other end read nothing for {timeout:g} s")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._out.changed.wait(), left)

    def close(self, reason: str = "", code: int = 0) -> None:
        """Close both ends with ``reason`` (idempotent); the other end reads what is left."""
        shared = self._shared
        if shared.closed.is_set():
            return
        shared.reason = reason or "closed"
        for end in shared.ends:
            end.closed_by_peer = end is not self
        shared.closed.set()
        self._in.changed.set()
        self._out.changed.set()

    async def aclose(self, reason: str = "") -> None:
        """``close``; nothing else to release."""
        self.close(reason)

    async def wait_closed(self) -> None:
        """Wait until either end closes the connection."""
        await self._shared.closed.wait()

    # -- a client's side ------------------------------------------------------

    async def handshake(self, hello: HandshakeFrame, timeout: float = 10.0) -> None:
        """Send ``hello`` and wait for the zipper's answer (Go: mem.FrameConn.Handshake).

        Raises:
            RejectedError: the zipper rejected it (the connection is closed).
            ConnectToError: the zipper redirects the client elsewhere (closed too).
            TimeoutError: no answer within ``timeout`` seconds.
        """
        table = ClientHandshake(hello)
        self.send_nowait(table.start())
        try:
            reply = await asyncio.wait_for(self.read_frame(), timeout)
        except asyncio.TimeoutError:
            self.close("handshake timeout")
            raise TimeoutError(
                f"the zipper did not answer the handshake in {timeout:g} s"
            ) from None
        try:
            table.receive(reply)
        except HandshakeError:
            self.close("handshake refused")
            raise


class MemoryListener:
    """Connections inside one process, served by a zipper (Go: pkg/listener/mem).

    ::

        listener = MemoryListener()
        zipper = yomo.aio.Zipper("z", "127.0.0.1", 0, listeners=[listener])
        await zipper.start()
        conn = await listener.dial()
        await conn.handshake(HandshakeFrame(name="src", id="1", client_type=ClientType.SOURCE,
                                            version=yomo.SPEC_VERSION))
        await conn.write_frame(DataFrame(tag=0x33, metadata=b"", payload=b"hi"))

    Args:
        backlog: connections dialled but not yet accepted; ``dial`` waits beyond it.
        high_water: bytes either side of a connection may be ahead of the other.
    """

    def __init__(self, *, backlog: int = 16, high_water: int = DEFAULT_HIGH_WATER) -> None:
        self._pending: asyncio.Queue[MemoryConnection] = asyncio.Queue(maxsize=backlog)
        self._accepted: list[MemoryConnection] = []
        self._numbers = itertools.count(1)
        self._closed = asyncio.Event()
        self.high_water = high_water

    async def dial(self) -> MemoryConnection:
        """A new connection's client end, once the zipper may accept it.

        Raises:
            ConnectionClosedError: the listener is closed.
        """
        if self._closed.is_set():
            raise ConnectionClosedError("the memory listener is closed", remote=True)
        up, down, shared = _Channel(), _Channel(), _Shared()
        number = next(self._numbers)
        mine = MemoryConnection(down, up, shared, ("zipper", 0), high_water=self.high_water)
        theirs = MemoryConnection(up, down, shared, ("memory", number), high_water=self.high_water)
        await self._pending.put(theirs)
        return mine

    async def accept(self) -> Connection:
        """The zipper's end of the next dialled connection.

        Raises:
            ConnectionClosedError: the listener is closed.
        """
        if self._closed.is_set():
            raise ConnectionClosedError("the memory listener is closed", remote=False)
        getting = asyncio.ensure_future(self._pending.get())
        closing = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({getting, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not getting.done():
                getting.cancel()
        if not getting.done() or getting.cancelled():
            raise ConnectionClosedError("the memory listener is closed", remote=False)
        conn = getting.result()
        self._accepted = [c for c in self._accepted if not c.closed]
        self._accepted.append(conn)
        return conn

    async def aclose(self) -> None:
        """Stop accepting; close every connection (Go: accepted Conns become unavailable)."""
        self._closed.set()
        while not self._pending.empty():
            self._pending.get_nowait().close("the memory listener is closed")
        for conn in self._accepted:
            conn.close("the memory listener is closed")
