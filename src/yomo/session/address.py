"""Zipper addresses as Go YoMo reads them: a missing host is ``localhost``, a missing port 9000.

Go: core/server.go ParseZipperAddr (on net.SplitHostPort). ``"zipper"`` means
``zipper:9000``, ``":9100"`` means ``localhost:9100``, ``""`` means
``localhost:9000``; an IPv6 host needs brackets (``[::1]:9000``, ``[::1]``).
Unlike Go, a port outside 1..65535 is refused here rather than when dialling.
"""

from __future__ import annotations

from yomo.errors import ConfigError

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "join_address", "parse_address"]

DEFAULT_HOST = "localhost"
#: Go: core/server.go ParseZipperAddr.
DEFAULT_PORT = 9000


def _split(addr: str) -> tuple[str, str]:
    """``host:port`` into its two parts, as Go's net.SplitHostPort does (``[v6]`` unwrapped).

    Raises:
        ValueError: a word saying what is wrong (``missing port``, ``too many colons``, ...).
    """
    last = addr.rfind(":")
    if last < 0:
        raise ValueError("missing port")
    start, end_of_host = 0, 0
    if addr.startswith("["):
        close = addr.find("]")
        if close < 0:
            raise ValueError("missing ']'")
        if close + 1 == len(addr):
            raise ValueError("missing port")
        if close + 1 != last:
            raise ValueError("too many colons" if addr[close + 1] == ":" else "missing port")
        host = addr[1:close]
        start, end_of_host = 1, close + 1
    else:
        host = addr[:last]
        if ":" in host:
            raise ValueError("too many colons")
    if "[" in addr[start:]:
        raise ValueError("unexpected '['")
    if "]" in addr[end_of_host:]:
        raise ValueError("unexpected ']'")
    return host, addr[last + 1 :]


def parse_address(addr: str) -> tuple[str, int]:
    """A zipper address -> ``(host, port)``, filling in ``localhost`` and 9000 as Go does.

    Raises:
        ValueError: the address cannot be read; the message says why and shows it.
    """
    try:
        host, port = _split(addr)
    except ValueError:
        try:
            host, port = _split(f"{addr}:{DEFAULT_PORT}")
        except ValueError as exc:
            hint = " (an IPv6 host needs brackets: [::1]:9000)" if addr.count(":") > 1 else ""
            raise ConfigError(f"yomo: zipper address {addr!r}: {exc}{hint}") from exc
    if not port:
        return host or DEFAULT_HOST, DEFAULT_PORT
    if not (port.isascii() and port.isdigit()):
        raise ConfigError(f"yomo: zipper address {addr!r}: invalid port {port!r}")
    value = int(port)
    if not 0 < value < 65536:
        raise ConfigError(f"yomo: zipper address {addr!r}: port must be 1..65535, got {value}")
    return host or DEFAULT_HOST, value


def join_address(host: str, port: int) -> str:
    """``(host, port)`` -> ``"host:port"``, an IPv6 host in brackets (Go: net.JoinHostPort)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
