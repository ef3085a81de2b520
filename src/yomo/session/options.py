"""A client's options, written once: ``ClientOptions`` and the keywords that build it.

``yomo.aio.Source``, ``yomo.aio.StreamFunction`` (and so ``yomo.Source`` and
``yomo.StreamFunction``), ``ClientCore`` and the mesh's links take the same
options. They are fields of one frozen dataclass with the defaults here (Go's,
where Go has one); the constructors take them as keyword arguments, typed by
``ClientKeywords``, or a whole ``ClientOptions`` as ``options=`` (the keywords
then change fields of it). Derive variants with ``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from yomo.transport import DEFAULT_CLIENT_SETTINGS, QuicSettings, TlsConfig

from .policy import ReconnectPolicy

__all__ = ["DEFAULT_RECONNECT", "DEFAULT_WRITE_TIMEOUT", "ClientKeywords", "ClientOptions"]

#: Seconds a write may wait for room (the zipper not reading) before it raises.
DEFAULT_WRITE_TIMEOUT = 30.0
#: Go's redial (every second), backing off to 30 s with jitter.
DEFAULT_RECONNECT = ReconnectPolicy()


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientOptions:
    """How a client connects to its zipper and writes to it."""

    credential: str = ""
    """``"token:<secret>"`` when the zipper has auth (Go: ``WithCredential``)."""
    tls: TlsConfig | None = None
    """Certificates; None: the ``YOMO_TLS_*`` variables (``TlsConfig.from_env``)."""
    quic: QuicSettings = DEFAULT_CLIENT_SETTINGS
    """QUIC settings; the default is Go's client values."""
    reconnect: ReconnectPolicy = DEFAULT_RECONNECT
    """How a broken connection is redialled (Go: retry every second)."""
    write_timeout: float = DEFAULT_WRITE_TIMEOUT
    """Seconds a write may wait while the zipper is not reading before it raises."""
    logger: logging.Logger | None = None
    """None: ``logging.getLogger("yomo")``."""
    tracer_provider: Any = None
    """An OpenTelemetry tracer provider: writes and handlers are traced (Source, StreamFunction)."""

    @classmethod
    def build(cls, options: ClientOptions | None, keywords: Mapping[str, Any]) -> ClientOptions:
        """``options`` (or the defaults) with the fields named in ``keywords`` changed."""
        base = options if options is not None else cls()
        if not keywords:
            return base
        # credential=None, quic=None, reconnect=None ask for the default, as they always did
        changes = {k: v for k, v in keywords.items() if v is not None or k not in _NONE_IS_DEFAULT}
        return dataclasses.replace(base, **changes)


_NONE_IS_DEFAULT = frozenset({"credential", "quic", "reconnect"})


class ClientKeywords(TypedDict, total=False):
    """The keyword arguments that set ``ClientOptions`` fields (see each field there)."""

    credential: str | None
    tls: TlsConfig | None
    quic: QuicSettings | None
    reconnect: ReconnectPolicy | None
    write_timeout: float
    logger: logging.Logger | None
    tracer_provider: Any
