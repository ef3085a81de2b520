"""Every error YoMo raises, in one tree.

::

    YomoError
     ├── ProtocolError                 bytes on the wire that break docs/protocol.md
     │    ├── LocalProtocolError        we were asked to encode something invalid
     │    └── RemoteProtocolError       the peer sent something invalid
     ├── HandshakeError                the zipper did not accept the handshake
     │    ├── RejectedError(message)     a RejectedFrame (final, never retried)
     │    │    └── AuthenticationError   rejected because of the credential
     │    └── ConnectToError(endpoint)   the zipper redirects to another endpoint
     ├── TransportError                QUIC/TLS level failures
     │    ├── ConnectError               the zipper could not be reached
     │    ├── ListenError                an address cannot be served (also an OSError)
     │    └── TimeoutError               also a builtin TimeoutError
     ├── ConnectionClosedError(remote, message)
     │    └── FramesMayBeLostError(frames, resent)  reported: frames lost with a connection
     ├── TagError                      a data tag outside 0..0xFFFFFFFF (also a ValueError)
     │    └── ReservedTagError          a tag in the system range 0xF000..0xFFFF
     ├── AuthFailed(message, logged)   an authenticator refused a credential (zipper side)
     ├── HandlerError(name, tag, error) a handler raised (passed to the error handler)
     ├── ServerClosedError             the zipper is shutting down
     ├── StateError                    a call the object's state does not allow (also a RuntimeError)
     ├── ConfigError                   a broken config file or option (also a ValueError)
     │    └── FunctionFileError(details) a stream-function file that cannot be used
     └── FunctionCallError             LLM function calling: a bad definition, call or answer
          ├── FunctionDefinitionError   a description, argument type or schema is unusable
          ├── LLMArgumentsError         the LLM's arguments do not fit the argument type
          └── NoLLMResultError          a handler returned without answering the call

Messages start with ``yomo: ``; the details are also kept as attributes.
This module imports nothing of ours so that every layer may use it. Errors of
the QUIC libraries become these at one place, ``yomo.transport._errors``.
"""

from __future__ import annotations

import builtins

__all__ = [
    "AUTHENTICATION_REJECTIONS",
    "AuthFailed",
    "AuthenticationError",
    "ConfigError",
    "ConnectError",
    "ConnectToError",
    "ConnectionClosedError",
    "FramesMayBeLostError",
    "FunctionCallError",
    "FunctionDefinitionError",
    "FunctionFileError",
    "HandlerError",
    "HandshakeError",
    "LLMArgumentsError",
    "ListenError",
    "LocalProtocolError",
    "NoLLMResultError",
    "ProtocolError",
    "RejectedError",
    "RemoteProtocolError",
    "ReservedTagError",
    "ServerClosedError",
    "StateError",
    "TagError",
    "TimeoutError",
    "TransportError",
    "YomoError",
]


def _prefixed(message: str) -> str:
    return message if message.startswith("yomo: ") else f"yomo: {message}"


class YomoError(Exception):
    """Root of every error raised by this package."""

    def __init__(self, message: str = "") -> None:
        self.message = message
        super().__init__(_prefixed(message))


class ProtocolError(YomoError):
    """Bytes that break the wire contract; see the two subclasses.

    ``offset`` is where in the input the problem was found, when known.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        if offset is not None:
            message = f"{message} (at offset {offset})"
        super().__init__(message)


class LocalProtocolError(ProtocolError):
    """We were asked to build a frame the protocol cannot carry."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not a valid YoMo frame."""


class HandshakeError(YomoError):
    """The zipper did not acknowledge the handshake."""


#: How zippers word a rejected credential. A RejectedFrame carries text only, so
#: these exact openings are the whole contract: Go's ``invalid token: <payload>``
#: (Go: pkg/auth/token.go Authenticate), ``authentication not found: <name>`` (Go:
#: core/auth/auth.go Authenticate), and our zipper's auth brake (zipper/server.py).
AUTHENTICATION_REJECTIONS = (
    "invalid token: ",
    "authentication not found: ",
    "yomo: too many failed authentication attempts",
)


class RejectedError(HandshakeError):
    """The zipper answered with a RejectedFrame. Final: clients do not retry."""

    def __init__(self, message: str) -> None:
        self.reason = message
        super().__init__(f"rejected by zipper: {message}")

    @classmethod
    def from_message(cls, message: str) -> RejectedError:
        """The error for a RejectedFrame's ``message``: ``AuthenticationError`` when it is
        one of the zippers' credential rejections (``AUTHENTICATION_REJECTIONS``)."""
        if message.startswith(AUTHENTICATION_REJECTIONS):
            return AuthenticationError(message)
        return RejectedError(message)


class AuthenticationError(RejectedError):
    """The zipper rejected the credential."""


class ConnectToError(HandshakeError):
    """The zipper asked the client to connect to ``endpoint`` instead."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        super().__init__(f"zipper redirects to {endpoint}")


class TransportError(YomoError):
    """A QUIC or TLS level failure."""


class ConnectError(TransportError):
    """The zipper could not be reached or the QUIC/TLS handshake failed."""


class ListenError(TransportError, OSError):
    """An address cannot be bound to serve on (the zipper, its monitor); also an OSError."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """An operation did not finish within its bound."""


class ConnectionClosedError(YomoError):
    """The connection is closed; ``remote`` says whether the peer closed it."""

    def __init__(self, message: str = "connection closed", *, remote: bool = False) -> None:
        self.remote = remote
        self.reason = message
        super().__init__(message)


class FramesMayBeLostError(ConnectionClosedError):
    """Passed to the error handler (never raised): frames that may be lost with a connection.

    ``frames``: written, and acknowledged by the zipper's transport (or never
    re-sent) just before the zipper went away, so perhaps never routed. ``resent``:
    never acknowledged, so written again on the new connection (not lost).
    """

    def __init__(self, frames: int, *, resent: int = 0) -> None:
        self.frames = frames
        self.resent = resent
        parts = []
        if frames:
            parts.append(f"{frames} frame(s) may be lost with the connection to the zipper")
        if resent:
            parts.append(f"{resent} unacknowledged frame(s) written again on the new connection")
        super().__init__("; ".join(parts) or "no frames lost", remote=False)


class TagError(YomoError, ValueError):
    """A data tag that cannot be written: outside 0..0xFFFFFFFF (a tag that is not an
    int at all is a ``TypeError``)."""


class ReservedTagError(TagError):
    """A data tag in the system range 0xF000..0xFFFF."""


class AuthFailed(YomoError):
    """Raised by an authenticator; ``message`` is sent to the client in a RejectedFrame.

    ``logged`` is what the zipper's log says instead: the client's text may carry
    what it presented (Go's ``invalid token: <payload>``), and secrets are never logged.
    """

    def __init__(self, message: str, *, logged: str | None = None) -> None:
        super().__init__(message)
        self.logged = logged if logged is not None else message


class HandlerError(YomoError):
    """A handler raised; passed to the error handler, and the function keeps running."""

    def __init__(self, name: str, tag: int, error: BaseException) -> None:
        self.error = error
        self.tag = tag
        super().__init__(
            f"handler of {name!r} failed on tag 0x{tag:x}: {type(error).__name__}: {error}"
        )


class ServerClosedError(YomoError):
    """The zipper is shutting down."""


class StateError(YomoError, RuntimeError):
    """A call the object's state does not allow: not started yet, a blocking call on
    yomo's own loop thread, a sync helper inside a running event loop."""


class ConfigError(YomoError, ValueError):
    """A configuration file or option is invalid; the message names the field."""


class FunctionFileError(ConfigError):
    """A stream-function file cannot be used; ``details`` is text to show before the message."""

    def __init__(self, message: str, details: str = "") -> None:
        self.details = details
        super().__init__(message)


class FunctionCallError(YomoError):
    """LLM function calling went wrong: a frame that should hold a tool call does not,
    a call was answered twice, or (subclasses) a definition or arguments are unusable."""


class FunctionDefinitionError(FunctionCallError, ValueError):
    """An LLM function's description, argument type or JSON schema cannot be used."""


class LLMArgumentsError(FunctionCallError):
    """The arguments the LLM chose do not fit the function's argument type.

    ``function`` is the called function's name, ``detail`` says what was wrong and
    ``what`` what was read (``"arguments"`` or ``"agent context"``); the LLM gets the
    message as the call's (failed) result.
    """

    def __init__(self, function: str, detail: str, *, what: str = "arguments") -> None:
        self.function = function
        self.detail = detail
        self.what = what
        super().__init__(f"invalid {what} for function {function!r}: {detail}")


class NoLLMResultError(FunctionCallError):
    """A handler returned from an LLM tool call without ``write_llm_result``."""

    def __init__(self, function: str) -> None:
        self.function = function
        super().__init__(f"function {function!r} returned without write_llm_result")
