"""The connection interface every data path implements (and a test double may).

``FrameConnection`` (qh3/aioquic), ``AiopquicConnection`` and ``NativeConnection``
all satisfy it; the client core and the mesh use nothing else of a connection.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from yomo.wire import Frame

__all__ = ["Connection", "TrackedConnection"]


class Connection(Protocol):
    """One QUIC connection's single stream as a stream of YoMo frames."""

    close_reason: str | None
    closed_by_peer: bool

    @property
    def closed(self) -> bool:
        """True once the connection is closed, by either side."""

    @property
    def has_room(self) -> bool:
        """False while more than ``send_high_water`` bytes wait to be sent."""

    @property
    def send_backlog(self) -> int:
        """Bytes written that the peer has not taken yet."""

    @property
    def recv_backlog(self) -> int:
        """Bytes of received frames not read yet."""

    @property
    def remote_address(self) -> tuple[str, int]:
        """The peer's ``(host, port)``."""

    async def read_frame(self) -> Frame:
        """The next frame; raises ConnectionClosedError or RemoteProtocolError."""

    def send_nowait(self, data: Frame | bytes) -> None:
        """Queue a frame without waiting; raises ConnectionClosedError."""

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for room (bounded); raises ConnectionClosedError or TimeoutError."""

    async def write_frame(self, data: Frame | bytes, timeout: float | None = None) -> None:
        """``send_nowait`` then ``drain``."""

    async def drain_all(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until everything written was acknowledged."""

    def close(self, reason: str = "", code: int = ...) -> None:
        """Close now with ``reason`` (idempotent)."""

    async def aclose(self, reason: str = "") -> None:
        """Close and release what the connection holds."""

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""


@runtime_checkable
class TrackedConnection(Connection, Protocol):
    """A connection that tells what its peer acknowledged and when the peer last spoke.

    The client core's dead-zipper watchdog and its re-send journal need it
    (``yomo.session.core``, ``journal.py``); the qh3/aioquic ``FrameConnection`` and the
    native path's ``NativeConnection`` have it.
    A data path without it still works, with detection at the QUIC idle timeout and
    no re-send.
    """

    bytes_sent: int
    """Bytes written on the stream so far (the stream offset after the last write)."""
    bytes_received: int
    """Bytes received on the stream so far."""

    def unacknowledged(self) -> int:
        """Bytes written that the peer's transport has not acknowledged (never less than
        the truth: the client re-sends what this counts)."""

    def silent_for(self) -> float:
        """Seconds since the peer last sent anything."""

    def heard_now(self) -> None:
        """Count the peer as heard now (our own loop stalled: silence proves nothing)."""

    def ping_nowait(self) -> None:
        """Send a PING now; never raises."""
