"""A client registered with the zipper, as its handshake, routing and hooks see it.

One object per accepted connection (a source, a stream function or an upstream
zipper's mesh link): its identity from the HandshakeFrame, the metadata its
credential merges into every frame, its counters, and the connection it came on
(a ``FrameConnection`` on the pure-Python path, a ``NativeClient`` handle on the
native one). It is the ``ClientConnection`` the hooks receive. Not a mesh peer,
which is a zipper this one dials (``yomo.zipper.mesh``). The log helpers here
keep client-chosen strings short in every line the zipper writes about one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from yomo.errors import ConnectionClosedError
from yomo.transport.native import NativeServer
from yomo.wire import ClientType, Frame, HandshakeFrame

from .hooks import Connector
from .resend import Progress
from .stats import ConnectionInfo, ZipperStats

__all__ = [
    "CLIENT_TYPE_NAMES",
    "LOG_TAGS_LIMIT",
    "LOG_TEXT_LIMIT",
    "AnyConnection",
    "NativeClient",
    "RegisteredClient",
    "ZipperParts",
    "clip",
    "registered",
    "registered_clients",
    "tags_for_log",
    "type_name",
]

#: Characters of a client-chosen string (name, version, auth name) a log line shows.
LOG_TEXT_LIMIT = 128
#: Observed tags a log line lists before it only counts the rest.
LOG_TAGS_LIMIT = 16

#: The client types a zipper accepts, by the name its logs and stats use.
CLIENT_TYPE_NAMES = {
    ClientType.SOURCE: "Source",
    ClientType.UPSTREAM_ZIPPER: "UpstreamZipper",
    ClientType.STREAM_FUNCTION: "StreamFunction",
}


def clip(text: str, limit: int = LOG_TEXT_LIMIT) -> str:
    """A client-chosen string for a log line: at most ``limit`` characters, and says how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text)} chars)"


def tags_for_log(tags: Sequence[int]) -> str:
    """Observed tags for a log line, the first ``LOG_TAGS_LIMIT`` of them."""
    shown = ", ".join(f"0x{t:x}" for t in tags[:LOG_TAGS_LIMIT])
    more = len(tags) - LOG_TAGS_LIMIT
    return f"{shown}, ... ({len(tags)} tags)" if more > 0 else shown


def type_name(client_type: int) -> str:
    """Go's name of a client type (``Source``), or ``Unknown(0x..)``."""
    name = CLIENT_TYPE_NAMES.get(client_type)  # type: ignore[call-overload]
    return str(name) if name is not None else f"Unknown(0x{client_type:02x})"


class NativeClient:
    """The handle of a client connection on the native data path, as the zipper's policy
    sees it (what a FrameConnection is on the pure-Python path)."""

    def __init__(self, server: NativeServer, number: int, address: tuple[str, int]) -> None:
        self.server = server
        self.number = number
        self.remote_address = address
        self.close_reason: str | None = None

    def send_nowait(self, frame: Frame) -> None:
        if not self.server.native.send_to(self.number, frame.encode()):
            raise ConnectionClosedError("connection closed")

    def close(self, reason: str = "", _tries: int = 40) -> None:
        self.server.native.close_connection(self.number, reason)
        # The native side registers an accepted connection a moment after accept(); a close
        # before that is lost, so repeat it until the "closed" event has come (2 s at most).
        if _tries and self.close_reason is None:
            asyncio.get_running_loop().call_later(0.05, self.close, reason, _tries - 1)


@dataclass(frozen=True, slots=True)
class ZipperParts:
    """What a zipper's admission and routing share: its counters, its logger and the
    registry of its clients."""

    stats: ZipperStats
    log: logging.Logger
    connector: Connector


AnyConnection = Any
"""A FrameConnection (pure-Python path) or a NativeClient (native path)."""


class RegisteredClient:
    """A registered client of this zipper (a source, a stream function or an upstream
    zipper's mesh link): identity from its handshake and its counters."""

    __slots__ = (
        "client_id",
        "client_type",
        "closed_by_zipper",
        "conn",
        "connected_at",
        "dropped",
        "ended",
        "frames_in",
        "frames_out",
        "last_drop_log",
        "merge",
        "name",
        "number",
        "place",
        "progress",
        "tags",
        "wanted_target",
    )

    def __init__(
        self, number: int, hf: HandshakeFrame, merge: dict[str, str], conn: AnyConnection
    ) -> None:
        self.number = number
        self.name = hf.name
        self.client_id = hf.id
        self.client_type = hf.client_type
        self.tags = tuple(hf.observe_data_tags)
        self.wanted_target = hf.wanted_target
        self.merge = merge
        self.conn = conn
        self.connected_at = time.time()
        self.frames_in = 0
        self.frames_out = 0
        self.dropped = 0
        self.last_drop_log = 0.0
        self.ended: asyncio.Event | None = None  # native path, with connection middleware
        self.closed_by_zipper = False  # close() was called (its reason is the one sent)
        self.progress: Progress | None = None  # pure-Python path: re-sent frames (resend.py)
        self.place: tuple[Progress, int] | None = None  # the frame being routed's, there

    # what hooks see of it (yomo.zipper.hooks.ClientConnection)

    @property
    def observe_data_tags(self) -> tuple[int, ...]:
        return self.tags

    @property
    def metadata(self) -> Mapping[str, str]:
        return MappingProxyType(self.merge)

    @property
    def remote_address(self) -> tuple[str, int]:
        address: tuple[str, int] = self.conn.remote_address
        return address

    def close(self, reason: str) -> None:
        self.closed_by_zipper = True
        self.conn.close(reason)

    def info(
        self,
        remote_address: tuple[str, int],
        counts: tuple[int, int, int, int, int],
    ) -> ConnectionInfo:
        """The row ``Zipper.connections()`` shows; ``counts`` are (frames in, frames out,
        dropped, send backlog, receive backlog), from whichever data path counts them."""
        frames_in, frames_out, dropped, send_backlog, recv_backlog = counts
        return ConnectionInfo(
            number=self.number,
            name=self.name,
            client_id=self.client_id,
            client_type=type_name(self.client_type),
            observed_tags=self.tags,
            wanted_target=self.wanted_target,
            remote_address=remote_address,
            frames_in=frames_in,
            frames_out=frames_out,
            dropped=dropped,
            send_backlog=send_backlog,
            recv_backlog=recv_backlog,
            connected_at=self.connected_at,
        )

    def describe(self) -> str:
        return (
            f"{type_name(self.client_type)} {clip(self.name)!r} "
            f"(id {clip(self.client_id)}, #{self.number})"
        )


def registered(connector: Connector, number: int) -> RegisteredClient | None:
    """The client registered as connection ``number``, if it is still there."""
    client = connector.get(number)
    return client if isinstance(client, RegisteredClient) else None


def registered_clients(connector: Connector) -> list[RegisteredClient]:
    """Every client registered in ``connector``."""
    return [c for c in connector.find(_everyone) if isinstance(c, RegisteredClient)]


def _everyone(_: object) -> bool:
    return True
