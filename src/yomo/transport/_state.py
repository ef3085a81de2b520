"""What every QUIC data path's connection keeps the same way: a shared base class.

``FrameConnection`` (qh3/aioquic, and ``AiopquicConnection`` on it) and the
native path's ``NativeConnection`` hold their closed and drained flags, the close
reason and who closed the same way; only how many bytes wait to be sent differs.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

from yomo.errors import ConnectionClosedError

__all__ = ["ConnectionState"]


class ConnectionState(ABC):
    """The state part of ``yomo.transport.connection.Connection``.

    A subclass sets ``_closed`` once the connection is closed (after ``close_reason``
    and ``closed_by_peer``), clears ``_drained`` while writers must wait and sets it
    when they may go on, sets ``_readable`` when frames arrive, and tells its
    ``send_backlog``.
    """

    def __init__(self) -> None:
        self._readable = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._closed = asyncio.Event()
        self.close_reason: str | None = None
        """Why the connection closed (None while it is open)."""
        self.closed_by_peer = False
        """True when the peer closed it."""
        self._error: BaseException | None = None
        """What closed the connection when it was the peer's bad input: raised by reads."""

    @property
    def closed(self) -> bool:
        """True once the connection is closed, by either side."""
        return self._closed.is_set()

    @property
    def has_room(self) -> bool:
        """False while more than ``send_high_water`` bytes wait to be sent."""
        return self._drained.is_set()

    @property
    @abstractmethod
    def send_backlog(self) -> int:
        """Bytes written that the peer has not taken yet."""

    def _closed_error(self) -> ConnectionClosedError:
        """What using a closed connection raises: the close reason, and who closed it."""
        return ConnectionClosedError(
            self.close_reason or "connection closed", remote=self.closed_by_peer
        )

    async def _wait_readable(self) -> None:
        """Wait until frames arrive; raises what closed the connection once it is closed."""
        if self._closed.is_set():
            if self._error is not None:
                raise self._error
            raise self._closed_error()
        self._readable.clear()
        await self._readable.wait()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await self._closed.wait()
