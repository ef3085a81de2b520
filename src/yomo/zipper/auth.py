"""Authentication of handshakes: the ``Authenticator`` protocol, token auth, and lookup.

Go: core/auth/auth.go and pkg/auth/token.go (v1.22.3). A credential is
``name:payload``; a handshake with no auth name goes to the first configured
authenticator. The rejection texts are Go's, so clients see the same errors.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from yomo.errors import ConfigError

__all__ = [
    "AuthFailed",
    "Authenticator",
    "TokenAuth",
    "authenticate",
    "authenticator_for",
    "split_credential",
]


class AuthFailed(Exception):
    """Raised by an authenticator; its text is sent to the client in a RejectedFrame."""


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
        raise AuthFailed(f"invalid token: {payload}")


def split_credential(credential: str | None) -> tuple[str, str]:
    """``"token:abc"`` -> ``("token", "abc")``; with no colon the name is empty (Go)."""
    if not credential:
        return "", ""
    name, sep, payload = credential.partition(":")
    if not sep:
        return "", credential
    return name, payload


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
