"""The qh3 and aioquic backends: loading them, choosing one, and their configuration.

qh3 (the default, about 3.5x faster) is a fork of aioquic; aioquic is the only
one that can ask a client for its certificate, so a zipper with mutual TLS uses
it. ``YOMO_QUIC_BACKEND`` / ``QuicSettings.backend`` picks one explicitly; the
optional aiopquic backend lives in ``_aiopquic.py``.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

from yomo.errors import TransportError

from ._protocol import make_protocol_class
from .qlog import qlog_enabled, qlog_logger
from .settings import ALPN, BACKEND_ENV, QuicSettings, choose_backend
from .tls import TlsConfig

__all__ = ["BACKENDS", "Backend", "configuration", "load_backend", "resolve_backend"]

#: The pure-Python backends a connection can use (``native`` is ``transport/native.py``).
BACKENDS = ("qh3", "aioquic", "aiopquic")


@dataclass
class Backend:
    """One QUIC library's asyncio entry points and our protocol class for it."""

    name: str
    version: str
    serve: Any
    connect: Any
    base_protocol: type[Any]
    configuration: Any
    events: Any
    protocol_class: type[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.protocol_class = make_protocol_class(self.name, self.base_protocol, self.events)


_loaded: dict[str, Backend] = {}


def backend_name(name: str | None) -> str:
    """The backend ``name`` stands for (None: ``YOMO_QUIC_BACKEND``, else qh3).

    Raises:
        TransportError: ``name`` is not a backend.
    """
    name = name or os.environ.get(BACKEND_ENV) or "qh3"
    if name == "native":  # the caller checks wants_native() first; this is the fallback
        name = "qh3"
    if name not in BACKENDS:
        raise TransportError(f"unknown QUIC backend {name!r} (choose from {', '.join(BACKENDS)})")
    return name


def load_backend(name: str) -> Backend:
    """qh3 or aioquic, imported once.

    Raises:
        TransportError: the library is not installed.
    """
    cached = _loaded.get(name)
    if cached is not None:
        return cached
    try:
        lib = importlib.import_module(name)
        aio = importlib.import_module(f"{name}.asyncio")
        config = importlib.import_module(f"{name}.quic.configuration")
        events = importlib.import_module(f"{name}.quic.events")
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise TransportError(f"QUIC backend {name!r} is not installed: {exc}") from exc
    backend = Backend(
        name=name,
        version=getattr(lib, "__version__", "?"),
        serve=aio.serve,
        connect=aio.connect,
        base_protocol=aio.QuicConnectionProtocol,
        configuration=config.QuicConfiguration,
        events=events,
    )
    _loaded[name] = backend
    return backend


def resolve_backend(settings: QuicSettings, tls: TlsConfig, *, server: bool) -> str:
    """The backend a new connection or listener uses, by settings, environment and TLS.

    Raises:
        TransportError: the backend is unknown, or cannot do what ``tls`` asks.
    """
    asked = choose_backend(settings)
    if asked is not None and asked != "native":  # native: the pure-Python default below
        name = backend_name(asked)
        if server and tls.verify_peer and name != "aioquic":
            raise TransportError(
                f"mutual TLS on the zipper needs the aioquic backend ({name} cannot "
                "request client certificates)"
            )
        return name
    return "aioquic" if (server and tls.verify_peer) else "qh3"


def configuration(
    factory: Any,
    settings: QuicSettings,
    *,
    is_client: bool,
    server_name: str | None,
    qlog: str | None = None,
    **extra: Any,
) -> Any:
    """A library ``QuicConfiguration`` for YoMo: ALPN, idle timeout, windows.

    ``qlog``: the library (qh3, aioquic) whose qlog writer to set when
    ``YOMO_QLOG_TRACE=true`` (``transport/qlog.py``).
    """
    config = factory(
        is_client=is_client,
        alpn_protocols=[ALPN],
        idle_timeout=settings.idle_timeout,
        max_data=settings.max_data,
        max_stream_data=settings.max_stream_data,
        **extra,
    )
    if server_name is not None:
        config.server_name = server_name
    if qlog is not None and qlog_enabled():
        config.quic_logger = qlog_logger(qlog, is_client=is_client)
    return config
