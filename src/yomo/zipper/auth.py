"""Authentication of handshakes: the ``Authenticator`` protocol, token auth, and lookup.

Go: core/auth/auth.go and pkg/auth/token.go (v1.22.3). A credential is
``name:payload``; a handshake with no auth name goes to the first configured
authenticator. The rejection texts are Go's, so clients see the same errors.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from yomo.errors import AuthFailed, ConfigError

__all__ = [
    "DEFAULT_AUTH_FAILURES_PER_SECOND",
    "AuthBrake",
    "AuthFailed",
    "Authenticator",
    "TokenAuth",
    "authenticate",
    "authenticator_for",
]


#: Failed credential checks a zipper makes per second for one source address.
DEFAULT_AUTH_FAILURES_PER_SECOND = 10.0


@runtime_checkable
class Authenticator(Protocol):
    """Checks a credential payload and returns metadata to attach to the connection."""

    @property
    def name(self) -> str:
        """The auth name clients put before the colon, e.g. ``token``."""
        ...

    def authenticate(self, payload: str) -> Mapping[str, str]:
        """Return connection metadata, or raise ``AuthFailed`` with Go's message."""
        ...


class TokenAuth:
    """``token:<secret>``; the secret is compared in constant time."""

    name = "token"

    def __init__(self, token: str) -> None:
        if not token:
            raise ConfigError("auth: token auth needs a non-empty token")
        self._token = token.encode()

    def authenticate(self, payload: str) -> Mapping[str, str]:
        if hmac.compare_digest(self._token, payload.encode()):
            return {}
        raise AuthFailed(f"invalid token: {payload}", logged="invalid token (not logged)")


def authenticate(
    authenticators: Sequence[Authenticator], auth_name: str, payload: str
) -> Mapping[str, str]:
    """Check a handshake's credential; with no authenticators everyone is let in.

    Raises:
        AuthFailed: with Go's message (``authentication not found: x``, ``invalid token: y``).
    """
    if not authenticators:
        return {}
    if not auth_name:
        return authenticators[0].authenticate(payload)
    for auth in authenticators:
        if auth.name == auth_name:
            return auth.authenticate(payload)
    raise AuthFailed(f"authentication not found: {auth_name}")


def authenticator_for(auth_type: str, token: str = "") -> Authenticator | None:
    """The authenticator a config's ``auth`` section names (``none`` gives None)."""
    if auth_type in ("", "none"):
        return None
    if auth_type == "token":
        return TokenAuth(token)
    raise ConfigError(f"auth: unknown type {auth_type!r} (expected token or none)")


class AuthBrake:
    """Per source address, at most ``rate`` failed credential checks a second (a token bucket).

    Each failure takes a token; tokens come back at ``rate`` a second up to ``rate``.
    While an address has no token, its handshakes are refused without being checked,
    so guessing runs at ``rate`` a second at most, and clients that authenticate fine
    (a reconnect storm from one address) are never slowed. ``rate`` 0 turns it off.
    At most ``max_addresses`` are tracked; the least recently failing go first.
    Time is passed in, so this is tested without a clock.
    """

    def __init__(self, rate: float = DEFAULT_AUTH_FAILURES_PER_SECOND, max_addresses: int = 65536):
        if rate < 0:
            raise ConfigError(f"auth brake: rate must be >= 0, got {rate}")
        self.rate = rate
        self.max_addresses = max_addresses
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)

    def _tokens(self, address: str, now: float) -> float:
        tokens, at = self._buckets.get(address, (self.rate, now))
        return min(self.rate, tokens + (now - at) * self.rate)

    def allows(self, address: str, now: float) -> bool:
        """May a handshake from ``address`` be checked now?"""
        return self.rate <= 0 or address not in self._buckets or self._tokens(address, now) >= 1.0

    def failed(self, address: str, now: float) -> None:
        """Book one failed check from ``address``."""
        if self.rate <= 0:
            return
        tokens = self._tokens(address, now) - 1.0
        self._buckets.pop(address, None)  # re-insert: dict order is least recently failing first
        self._buckets[address] = (tokens, now)
        while len(self._buckets) > self.max_addresses:
            del self._buckets[next(iter(self._buckets))]

    def retry_after(self, address: str, now: float) -> float:
        """Seconds until ``address`` may be checked again (0 when it may now)."""
        if self.allows(address, now):
            return 0.0
        return (1.0 - self._tokens(address, now)) / self.rate
