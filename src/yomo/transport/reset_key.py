"""The zipper's stateless-reset key: the same after a restart, so clients learn at once.

A QUIC endpoint that gets a packet for a connection it does not know answers with a
stateless reset (RFC 9000 section 10.3) that only the connection's client can check:
it ends with a token derived from the connection id and the endpoint's reset key. A
zipper with a new random key after a restart sends resets nobody accepts, and its old
clients wait for their idle timeout; with the key below they drop the dead connection
the moment the restarted zipper hears from them, and redial.

The key is HMAC-SHA256 of the listen address under a secret that outlives the process:
the zipper's TLS private key when one is configured (``YOMO_TLS_KEY_FILE``), otherwise
32 random bytes kept in ``$XDG_CACHE_HOME/yomo/stateless-reset.key`` (``~/.cache``;
created on first use, mode 0600). When neither can be had, a random key (no reset
survives a restart then). Only the native data path uses it (quinn); qh3 sends no
stateless resets.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path

from .tls import TlsConfig

__all__ = ["SECRET_FILE_NAME", "stateless_reset_key"]

SECRET_FILE_NAME = "stateless-reset.key"
_SECRET_BYTES = 32

log = logging.getLogger("yomo.transport")


def stateless_reset_key(tls: TlsConfig, host: str, port: int) -> bytes:
    """The reset key of a zipper listening on ``host:port`` (see the module docs)."""
    secret = _secret(tls)
    return hmac.new(
        secret, f"yomo stateless reset v1 {host}:{port}".encode(), hashlib.sha256
    ).digest()


def _secret(tls: TlsConfig) -> bytes:
    if tls.key_file:
        try:
            return Path(tls.key_file).read_bytes()
        except OSError:
            pass  # the TLS setup reports an unreadable key in its own words
    try:
        return _cached_secret(_cache_dir() / SECRET_FILE_NAME)
    except OSError as exc:
        log.debug("no lasting stateless-reset secret (%s): resets will not survive a restart", exc)
        return os.urandom(_SECRET_BYTES)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "yomo"


def _cached_secret(path: Path) -> bytes:
    """The secret in ``path``; created (atomically, 0600) when missing or too short."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    if len(data) >= _SECRET_BYTES:
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = os.urandom(_SECRET_BYTES)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, fresh)
    finally:
        os.close(fd)
    try:
        if data:  # a broken (short) file: replace it
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # the first writer wins; a racing zipper reads its secret
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    data = path.read_bytes()
    return data if len(data) >= _SECRET_BYTES else fresh
