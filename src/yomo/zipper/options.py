"""A zipper's options, written once: ``ZipperOptions``, ``MeshOptions`` and their keywords.

``yomo.aio.Zipper`` (and so ``yomo.Zipper``) takes these as keyword arguments,
typed by ``ZipperKeywords``, or a whole ``ZipperOptions`` as ``options=`` (the
keywords then change fields of it). The defaults live here, Go's where Go has
one (core/server_options.go); each is checked once, when the options are made,
with a ``ConfigError`` that names the field. Derive variants with
``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from yomo.errors import ConfigError
from yomo.session import ReconnectPolicy
from yomo.transport import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_ZIPPER_SETTINGS,
    QuicSettings,
    TlsConfig,
)
from yomo.transport.settings import DEFAULT_DEAD_AFTER, DEFAULT_DROP_THRESHOLD

from .auth import DEFAULT_AUTH_FAILURES_PER_SECOND, Authenticator
from .config import MeshPeer
from .hooks import (
    ClientConnection,
    ConnectionMiddleware,
    Connector,
    FrameMiddleware,
    MetadataRouter,
    VersionNegotiator,
)
from .memory import FrameListener
from .router import Router
from .startup_hold import DEFAULT_STARTUP_HOLD
from .stats import DEFAULT_MAX_TAG_STATS

__all__ = [
    "DEFAULT_DEAD_AFTER",
    "DEFAULT_DROP_THRESHOLD",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_QUEUE_BYTES",
    "DEFAULT_MESH_RECONNECT",
    "DEFAULT_SEND_TIMEOUT",
    "DEFAULT_STATS_INTERVAL",
    "MeshOptions",
    "SlowConsumerPolicy",
    "ZipperKeywords",
    "ZipperOptions",
]

SlowConsumerPolicy = Literal["block", "drop"]

#: Seconds between two INFO summary lines of the zipper.
DEFAULT_STATS_INTERVAL = 30.0
#: Bytes of frames a link may hold for a peer that is not taking them (per peer).
DEFAULT_MAX_QUEUE_BYTES = 4 * 1024 * 1024
#: Seconds a frame may wait for room on the connection before it is dropped (Go: 1 s).
DEFAULT_SEND_TIMEOUT = 1.0
#: Redial policy of mesh links: 1 s first, then 2 s, never gives up (Go: every 1 s). A
#: peer is one connection, so redialling a dead one often costs little, and a healed
#: link is back within about 2 s.
DEFAULT_MESH_RECONNECT = ReconnectPolicy(initial_delay=1.0, max_delay=2.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class MeshOptions:
    """How a zipper's links to its mesh peers queue, send and redial (docs/mesh.md)."""

    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    """Per peer, the bytes of frames waiting to be sent before new ones drop."""
    send_timeout: float = DEFAULT_SEND_TIMEOUT
    """Seconds a frame may wait for room on the connection before it drops."""
    reconnect: ReconnectPolicy = DEFAULT_MESH_RECONNECT
    """The redial backoff (retries never end, whatever ``connect_timeout`` says)."""

    def __post_init__(self) -> None:
        if self.max_queue_bytes <= 0:
            raise ConfigError(
                f"yomo: mesh max_queue_bytes must be positive, got {self.max_queue_bytes}"
            )
        if self.send_timeout <= 0:
            raise ConfigError(f"yomo: mesh send_timeout must be positive, got {self.send_timeout}")

    @classmethod
    def of(cls, value: MeshOptions | Mapping[str, Any] | None) -> MeshOptions:
        """``value`` as ``MeshOptions``: a mapping of its field names is still accepted."""
        if value is None:
            return cls()
        if isinstance(value, MeshOptions):
            return value
        unknown = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"yomo: mesh_options: unknown option(s) {', '.join(unknown)}")
        return cls(**value)


@dataclass(frozen=True, kw_only=True, slots=True)
class ZipperOptions:
    """Everything a zipper is configured with besides its name and address."""

    authenticators: Sequence[Authenticator] = ()
    """Credential checkers; none lets everyone in."""
    tls: TlsConfig | None = None
    """Certificates; None: the ``YOMO_TLS_*`` variables."""
    quic: QuicSettings = DEFAULT_ZIPPER_SETTINGS
    """QUIC settings; the default is Go's zipper values."""
    slow_consumer: SlowConsumerPolicy = "block"
    """``"block"`` (lossless: producers wait for a function that is behind) or ``"drop"``."""
    drop_threshold: int = DEFAULT_DROP_THRESHOLD
    """With ``"drop"``, the unsent bytes for a function after which its frames are dropped."""
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    """Seconds a new connection has to send its HandshakeFrame."""
    auth_failures_per_second: float = DEFAULT_AUTH_FAILURES_PER_SECOND
    """Per source address, failed credential checks allowed a second; past it handshakes
    from that address are refused unchecked. 0: off."""
    dead_after: float = DEFAULT_DEAD_AFTER
    """A function that producers wait for (``"block"``) and that has not answered for this
    long is closed, so a dead process holds nobody."""
    mesh: Sequence[MeshPeer] = ()
    """Peers to forward to (see ``yomo.zipper.mesh``)."""
    mesh_options: MeshOptions = MeshOptions()
    """How the links to them queue, send and redial (a mapping of the same names is
    accepted too)."""
    router: Router[ClientConnection] | MetadataRouter | None = None
    """A replacement router: a ``yomo.zipper.router.Router`` (tag and target) or a
    ``yomo.zipper.hooks.MetadataRouter`` (the whole metadata: Go's ``Route(tag, md)``)."""
    connection_middleware: Sequence[ConnectionMiddleware] = ()
    """Go's ``WithConnMiddleware`` (``yomo.zipper.hooks``)."""
    frame_middleware: Sequence[FrameMiddleware] = ()
    """Go's ``WithFrameMiddleware``. Like a custom router or a listener, it puts the
    zipper on the pure-Python data path (Python sees every frame)."""
    version_negotiator: VersionNegotiator | None = None
    """Go's ``WithVersionNegotiateFunc``; None: the spec version must match."""
    connector: Connector | None = None
    """Go's ``WithConnector``: the registry of connections; None: an in-memory one."""
    listeners: Sequence[FrameListener] = ()
    """Go's ``WithFrameListener``: more listeners whose connections are served like QUIC ones."""
    logger: logging.Logger | None = None
    """None: ``logging.getLogger("yomo.zipper")``."""
    stats_interval: float = DEFAULT_STATS_INTERVAL
    """Seconds between two INFO summary lines (connections, frames/s, drops); 0: none.
    Unobserved-tag warnings are logged either way."""
    bridge: Any = None
    """A ``yomo.zipper.bridge_config.BridgeConfig``: serve the AI bridge and/or the MCP
    server; they connect to this zipper as clients."""
    bridge_credential: str = ""
    """What those clients present, e.g. ``"token:<token>"``."""
    monitor: str | tuple[str, int] | None = None
    """``"HOST:PORT"`` or ``(host, port)`` of the HTTP monitor endpoint (``/healthz``,
    ``/metrics``, ``/api/*``, a live page; docs/monitor.md)."""
    max_tag_stats: int = DEFAULT_MAX_TAG_STATS
    """Distinct tags counted one by one in ``stats()``; later ones add up in ``other_tags``."""
    startup_hold: float = DEFAULT_STARTUP_HOLD
    """Seconds after the start during which frames nobody observes yet are held for the
    functions that register then (0: drop them at once, as Go does); see
    ``yomo.zipper.startup_hold``."""

    def __post_init__(self) -> None:
        if self.slow_consumer not in ("block", "drop"):
            raise ConfigError(
                f"slow_consumer: expected 'block' or 'drop', got {self.slow_consumer!r}"
            )
        if self.max_tag_stats < 0:
            raise ConfigError(f"max_tag_stats: expected 0 or more, got {self.max_tag_stats}")
        # sequences are kept as tuples, so the options stay what they were made with
        for name in (
            "authenticators",
            "mesh",
            "connection_middleware",
            "frame_middleware",
            "listeners",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "mesh_options", MeshOptions.of(self.mesh_options))
        if isinstance(self.monitor, str):
            from yomo._asgi import parse_http_address

            object.__setattr__(self, "monitor", parse_http_address(self.monitor, what="monitor"))

    @property
    def monitor_address(self) -> tuple[str, int] | None:
        """``monitor`` as ``(host, port)`` (a string was parsed when the options were made)."""
        return None if isinstance(self.monitor, str) else self.monitor

    @classmethod
    def build(cls, options: ZipperOptions | None, keywords: Mapping[str, Any]) -> ZipperOptions:
        """``options`` (or the defaults) with the fields named in ``keywords`` changed."""
        base = options if options is not None else cls()
        if not keywords:
            return base
        # quic=None asks for the default, as it always did
        changes = {k: v for k, v in keywords.items() if v is not None or k != "quic"}
        return dataclasses.replace(base, **changes)


class ZipperKeywords(TypedDict, total=False):
    """The keyword arguments that set ``ZipperOptions`` fields (see each field there)."""

    authenticators: Sequence[Authenticator]
    tls: TlsConfig | None
    quic: QuicSettings | None
    slow_consumer: SlowConsumerPolicy
    drop_threshold: int
    handshake_timeout: float
    auth_failures_per_second: float
    dead_after: float
    mesh: Sequence[MeshPeer]
    mesh_options: MeshOptions | Mapping[str, Any] | None
    router: Router[ClientConnection] | MetadataRouter | None
    connection_middleware: Sequence[ConnectionMiddleware]
    frame_middleware: Sequence[FrameMiddleware]
    version_negotiator: VersionNegotiator | None
    connector: Connector | None
    listeners: Sequence[FrameListener]
    logger: logging.Logger | None
    stats_interval: float
    bridge: Any
    bridge_credential: str
    monitor: str | tuple[str, int] | None
    max_tag_stats: int
    startup_hold: float
