"""QUIC settings, YoMo's transport constants, and the choice of data path.

Data paths (``QuicSettings.backend`` or ``YOMO_QUIC_BACKEND``):

* ``native``: the Rust data path (``yomo._native``: quinn + rustls), the default
  wherever it was built (see docs/transport.md);
* ``qh3``: pure-Python QUIC (with ``aioquic`` for Go clients' empty connection ids
  and for mutual TLS on a zipper), the default where the native module is missing;
* ``aioquic``: pure-Python QUIC;
* ``aiopquic``: picoquic in C (optional extra, Python 3.12+).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from yomo.errors import TransportError
from yomo.wire import DEFAULT_MAX_FRAME_SIZE

__all__ = [
    "ALPN",
    "BACKENDS",
    "BACKEND_ENV",
    "CLOSE_CODE",
    "DEFAULT_CLIENT_SETTINGS",
    "DEFAULT_DEAD_AFTER",
    "DEFAULT_DROP_THRESHOLD",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_ZIPPER_SETTINGS",
    "QuicSettings",
    "choose_backend",
]

ALPN = "yomo"
#: Application error code YoMo closes connections with (Go: core/frame ErrCode 0x13).
CLOSE_CODE = 0x13
BACKEND_ENV = "YOMO_QUIC_BACKEND"
BACKENDS = ("native", "qh3", "aioquic", "aiopquic")
#: Seconds one side waits for the other's YoMo handshake frame: the zipper for a new
#: connection's HandshakeFrame, a client for the zipper's answer (after the QUIC
#: handshake, which ``QuicSettings.handshake_timeout`` bounds). The one definition:
#: the zipper's options, both data paths and the session layer use it.
DEFAULT_HANDSHAKE_TIMEOUT = 5.0
#: A function that producers wait for and that has been silent this long is closed
#: (the zipper's ``dead_after``; both data paths enforce it).
DEFAULT_DEAD_AFTER = 1.0
#: With the ``"drop"`` policy, unsent bytes for a function past which its frames drop
#: (the zipper's ``drop_threshold``; both data paths enforce it).
DEFAULT_DROP_THRESHOLD = 8 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class QuicSettings:
    """QUIC and buffering knobs; the defaults are Go YoMo's (core/config.go)."""

    idle_timeout: float = 40.0
    """Seconds without a packet before the connection is dropped (Go: MaxIdleTimeout 40 s)."""
    keep_alive: float = 20.0
    """Seconds between pings while idle; also capped at a third of ``idle_timeout``."""
    handshake_timeout: float = 3.0
    """Seconds the QUIC/TLS handshake may take (Go: HandshakeIdleTimeout 3 s)."""
    max_stream_data: int = 2 * 1024 * 1024
    """Initial stream receive window (Go: InitialStreamReceiveWindow 2 MiB)."""
    max_data: int = 2 * 1024 * 1024
    """Initial connection receive window (Go: InitialConnectionReceiveWindow 2 MiB)."""
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    """Largest frame accepted from the peer; bigger ones close the connection."""
    send_high_water: int = 1024 * 1024
    """A writer waits while more than this many bytes are queued but unsent."""
    recv_high_water: int = 4 * 1024 * 1024
    """Stop reading from the network while this many received bytes wait for the reader."""
    held_datagrams: int = 512
    """Datagrams kept while reading is paused (qh3/aioquic); QUIC retransmits anything beyond."""
    max_connections: int = 10_000
    """Connections a zipper holds at once (the native and aiopquic paths refuse more)."""
    backend: str | None = None
    """``"native"``, ``"qh3"``, ``"aioquic"`` or ``"aiopquic"``; None: ``YOMO_QUIC_BACKEND``,
    else the default data path (see the module docs)."""


DEFAULT_CLIENT_SETTINGS = QuicSettings()
#: The zipper's side (Go: core/server_options.go, MaxIdleTimeout 5 s, KeepAlivePeriod 2 s).
DEFAULT_ZIPPER_SETTINGS = QuicSettings(idle_timeout=5.0, keep_alive=2.0)


def _native_built() -> bool:
    try:
        from yomo import _native  # noqa: F401
    except ImportError:
        return False
    return True


#: The data path used when nothing is asked for (the pure-Python one where the native
#: module is not built).
DEFAULT_BACKEND = "native"


def choose_backend(settings: QuicSettings) -> str | None:
    """The data path asked for by ``settings`` or ``YOMO_QUIC_BACKEND``, checked; None
    when nothing is asked for (then the default applies).

    Raises:
        TransportError: an unknown name, or ``native`` where it was not built.
    """
    name = settings.backend or os.environ.get(BACKEND_ENV) or None
    if name is None:
        return None
    if name not in BACKENDS:
        raise TransportError(f"unknown QUIC backend {name!r} (choose from {', '.join(BACKENDS)})")
    if name == "native" and not _native_built():
        raise TransportError(
            "the native data path is not built into this install (it needs a Rust toolchain "
            "at install time; see docs/transport.md); choose another QUIC backend"
        )
    return name


def wants_native(settings: QuicSettings) -> bool:
    """True when connections with ``settings`` go over the native data path."""
    name = choose_backend(settings)
    if name is None:
        return DEFAULT_BACKEND == "native" and _native_built()
    return name == "native"
