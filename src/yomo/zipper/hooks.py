"""The zipper's extension points, passed in explicitly (Go: core/server_options.go).

Go v1.22.3 lets a zipper be built with ``WithConnMiddleware``, ``WithFrameMiddleware``,
``WithRouter``, ``WithVersionNegotiateFunc``, ``WithConnector`` and
``WithFrameListener``. Here they are keyword arguments of ``yomo.aio.Zipper`` (and
``yomo.Zipper``), typed by the protocols below:

* ``connection_middleware``: :data:`ConnectionMiddleware`, wraps the life of each
  registered connection (after its handshake is acknowledged, as in Go);
* ``frame_middleware``: :data:`FrameMiddleware`, wraps the routing of each frame a
  client writes: it may read and change the frame (:class:`FrameContext`), drop it,
  or close the writer's connection;
* ``router``: a :class:`MetadataRouter` (sees the whole metadata of each frame, as
  Go's ``Route(tag, md)``) or the tag-and-target ``yomo.zipper.router.Router``;
* ``version_negotiator``: a :data:`VersionNegotiator`, which may reject a client or
  redirect it to another zipper (raise ``yomo.ConnectToError``);
* ``connector``: a :class:`Connector`, the registry of connections (it may refuse
  or redirect one when it is stored);
* ``listeners``: extra :class:`yomo.zipper.memory.FrameListener` objects whose
  connections are served like QUIC ones (an in-process ``MemoryListener``, say).

Handshake-time hooks (connection middleware, version negotiator, connector) are
Python policy on either data path. Per-frame hooks (frame middleware, a custom
router, extra listeners) need Python to see every frame, so a zipper with any of
them serves on the pure-Python data path; docs/api.md#zipper-hooks says what that
costs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from yomo._version import SPEC_VERSION
from yomo.errors import RejectedError

__all__ = [
    "ClientConnection",
    "ConnectionHandler",
    "ConnectionMiddleware",
    "ConnectionRegistry",
    "Connector",
    "FrameContext",
    "FrameHandler",
    "FrameMiddleware",
    "MetadataRouter",
    "VersionNegotiator",
    "check_version",
    "compose",
    "default_version_negotiator",
]


class ClientConnection(Protocol):
    """A client's registered connection, as the hooks see it (Go: core.ConnectionInfo).

    Not to be confused with ``yomo.transport.connection.Connection`` (one QUIC stream).
    """

    @property
    def number(self) -> int:
        """The zipper's own id of the connection (Go: ``ID()``), unique while it lives."""
        ...

    @property
    def client_id(self) -> str:
        """The id the client sent (Go: ``ClientID()``), ``<id>-<n>`` on a reconnect."""
        ...

    @property
    def name(self) -> str:
        """The client's name."""
        ...

    @property
    def client_type(self) -> int:
        """``yomo.wire.ClientType``: source, stream function or upstream zipper."""
        ...

    @property
    def observe_data_tags(self) -> tuple[int, ...]:
        """The tags a stream function observes (Go: ``ObserveDataTags()``)."""
        ...

    @property
    def wanted_target(self) -> str:
        """The target a stream function receives targeted frames for, or ``""``."""
        ...

    @property
    def metadata(self) -> Mapping[str, str]:
        """The connection's metadata (from authentication, and its wanted target), merged
        into every frame it writes (Go: ``Metadata()``)."""
        ...

    @property
    def remote_address(self) -> tuple[str, int]:
        """Where the client connects from."""
        ...

    def close(self, reason: str) -> None:
        """Close the connection; the client sees ``reason`` (Go: ``CloseWithError``)."""
        ...


ConnectionHandler = Callable[[ClientConnection], Awaitable[None]]
"""Serves one registered connection until it ends (Go: core.ConnHandler)."""

ConnectionMiddleware = Callable[[ConnectionHandler], ConnectionHandler]
"""Wraps a :data:`ConnectionHandler` (Go: core.ConnMiddleware). Await ``next(conn)`` to
serve the connection; code before it runs once the handshake is acknowledged, code
after it once the connection has ended. Returning without calling ``next`` (or
raising) ends the connection: the zipper closes it."""


class FrameContext:
    """One frame a client wrote, on its way to routing (Go: core.Context).

    A frame middleware may change ``tag``, ``payload`` and ``metadata`` (routing uses
    what they are when the innermost handler runs), keep values for later middleware
    in ``keys``, or ``close`` the writer's connection. ``metadata`` is the frame's
    metadata with the connection's merged in, as Go's ``FrameMetadata``.
    """

    __slots__ = ("_keys", "_received", "_waits", "connection", "metadata", "payload", "tag")

    def __init__(
        self, connection: ClientConnection, tag: int, metadata: dict[str, str], payload: bytes
    ) -> None:
        self.connection = connection
        self.tag = tag
        self.metadata = metadata
        self.payload = payload
        self._keys: dict[str, Any] | None = None
        self._waits: Any = None  # what the producer waits for after routing (the zipper's)
        # the metadata as received (its bytes, and a copy of the map): the zipper forwards
        # those bytes unless a middleware changed the map
        self._received: tuple[bytes, dict[str, str]] | None = None

    @property
    def keys(self) -> dict[str, Any]:
        """Values middleware keep for this frame (Go: ``Context.Set`` / ``Get``)."""
        if self._keys is None:
            self._keys = {}
        return self._keys

    def close(self, reason: str) -> None:
        """Close the connection that wrote the frame (Go: ``Context.CloseWithError``)."""
        self.connection.close(reason)


FrameHandler = Callable[[FrameContext], None]
"""Handles one frame (Go: core.FrameHandler); the innermost one routes it."""

FrameMiddleware = Callable[[FrameHandler], FrameHandler]
"""Wraps a :data:`FrameHandler` (Go: core.FrameMiddleware). Call ``next(ctx)`` to let
the frame go on; not calling it drops the frame. It runs on the zipper's event loop
for every frame, so it must not block."""

H = TypeVar("H")


def compose(handler: H, middleware: Sequence[Callable[[H], H]]) -> H:
    """``middleware[0](middleware[1](...(handler)))``: the first is the outermost (Go)."""
    for wrap in reversed(middleware):
        handler = wrap(handler)
    return handler


VersionNegotiator = Callable[[str, str], None]
"""``negotiate(client_version, zipper_version)`` (Go: core.VersionNegotiateFunc).

Return to accept; raise ``yomo.RejectedError(reason)`` to reject the client (it gets a
RejectedFrame and does not retry), or ``yomo.ConnectToError(endpoint)`` to send it
to another zipper (it gets a ConnectToFrame and reconnects there). Any other
exception rejects the client with the exception's text."""


def default_version_negotiator(client_version: str, zipper_version: str) -> None:
    """Go's DefaultVersionNegotiateFunc: the versions must be equal.

    Raises:
        RejectedError: with Go's text, ``version negotiation failed: client=.., server=..``.
    """
    if client_version != zipper_version:
        raise RejectedError(
            f"version negotiation failed: client={client_version}, server={zipper_version}"
        )


@runtime_checkable
class MetadataRouter(Protocol):
    """Routes by tag and the whole metadata of each frame (Go: router.Router).

    ``add`` is called when a stream function registers (its ``metadata`` holds its
    wanted target under ``yomo-wanted-target`` and what authentication added),
    ``remove`` when it goes, ``route_frame`` for every frame with the frame's metadata
    (the writer's connection metadata merged in, ``yomo-target`` if it has one).
    """

    def add(self, connection: ClientConnection) -> None:
        """A stream function to route to."""
        ...

    def remove(self, number: int) -> None:
        """Forget connection ``number``."""
        ...

    def route_frame(self, tag: int, metadata: Mapping[str, str]) -> Iterable[ClientConnection]:
        """The connections a frame with ``tag`` and ``metadata`` goes to."""
        ...


class Connector(Protocol):
    """The registry of connections (Go: core.Connector).

    ``store`` is called for each connection before its handshake is acknowledged: it
    may raise ``yomo.RejectedError`` to refuse it (the client gets a RejectedFrame) or
    ``yomo.ConnectToError`` to redirect it. The zipper reads connections back through
    ``get`` and ``find`` (``zipper.connections()``, ``goaway``, stats).
    """

    def store(self, connection: ClientConnection) -> None:
        """Register ``connection``; raise to refuse or redirect it."""
        ...

    def remove(self, number: int) -> None:
        """Forget connection ``number`` (it has ended)."""
        ...

    def get(self, number: int) -> ClientConnection | None:
        """The connection ``number``, or None."""
        ...

    def find(self, match: Callable[[ClientConnection], bool]) -> list[ClientConnection]:
        """Every connection for which ``match`` is true."""
        ...


class ConnectionRegistry:
    """The default :class:`Connector`: connections by number, in registration order."""

    def __init__(self) -> None:
        self._connections: dict[int, ClientConnection] = {}

    def store(self, connection: ClientConnection) -> None:
        self._connections[connection.number] = connection

    def remove(self, number: int) -> None:
        self._connections.pop(number, None)

    def get(self, number: int) -> ClientConnection | None:
        return self._connections.get(number)

    def find(self, match: Callable[[ClientConnection], bool]) -> list[ClientConnection]:
        return [c for c in self._connections.values() if match(c)]

    def snapshot(self) -> dict[str, str]:
        """Connection number -> name (Go: ``Snapshot()``)."""
        return {str(n): c.name for n, c in self._connections.items()}

    def __len__(self) -> int:
        return len(self._connections)


def check_version(negotiate: VersionNegotiator, client_version: str) -> None:
    """Run ``negotiate`` for a handshake; any refusal comes out as RejectedError or
    ConnectToError (the zipper answers with the matching frame)."""
    from yomo.errors import ConnectToError

    try:
        negotiate(client_version, SPEC_VERSION)
    except (RejectedError, ConnectToError):
        raise
    except Exception as exc:  # Go: any other error is a rejection with its text
        raise RejectedError(str(exc) or type(exc).__name__) from exc
