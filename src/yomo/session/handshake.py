"""The YoMo handshake as tables: frames in, a state and frames (or an error) out, no I/O.

Go: core/client.go handleConnectResult (the client's side) and core/server.go
handshake (the zipper's side). Strategy, as h11's ``_state.py``: every transition is
a row of ``CLIENT_TRANSITIONS`` or ``ZIPPER_TRANSITIONS``, keyed by (state, frame
type); a frame type a state has no row for is a protocol error. The objects here
only keep the state; the caller does the I/O (``yomo.session.core`` dials, the
zipper's server reads) and the zipper's policy (version, auth, registration)
decides what an admitted HandshakeFrame becomes.
"""

from __future__ import annotations

import enum

from yomo._version import SPEC_VERSION
from yomo.errors import (
    ConnectToError,
    LocalProtocolError,
    RejectedError,
    RemoteProtocolError,
)
from yomo.transport.settings import DEFAULT_HANDSHAKE_TIMEOUT
from yomo.wire import (
    ConnectToFrame,
    Frame,
    HandshakeAckFrame,
    HandshakeFrame,
    RejectedFrame,
)

__all__ = [
    "CLIENT_TRANSITIONS",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "ZIPPER_TRANSITIONS",
    "ClientHandshake",
    "HandshakeState",
    "ZipperHandshake",
    "hello_frame",
    "rejection",
    "split_credential",
]


class HandshakeState(enum.Enum):
    """Where one side of a handshake is."""

    START = "start"
    """Nothing sent (client) or received (zipper) yet."""
    SENT = "sent"
    """Client: the HandshakeFrame is sent; the zipper's answer is awaited."""
    ACCEPTED = "accepted"
    """The zipper acknowledged: frames flow."""
    REJECTED = "rejected"
    """The zipper refused (final, Go: ErrRejected)."""
    REDIRECTED = "redirected"
    """Client: the zipper sent ConnectToFrame; dial the endpoint it names."""


S = HandshakeState

#: The client's side: (state, frame type received) -> next state.
CLIENT_TRANSITIONS: dict[tuple[HandshakeState, type[Frame]], HandshakeState] = {
    (S.SENT, HandshakeAckFrame): S.ACCEPTED,
    (S.SENT, RejectedFrame): S.REJECTED,
    (S.SENT, ConnectToFrame): S.REDIRECTED,
}

#: The zipper's side: (state, frame type received) -> next state when its policy admits
#: the client. The policy may turn ACCEPTED into REJECTED (bad version, credential, ...).
ZIPPER_TRANSITIONS: dict[tuple[HandshakeState, type[Frame]], HandshakeState] = {
    (S.START, HandshakeFrame): S.ACCEPTED,
}


def split_credential(credential: str) -> tuple[str, str]:
    """``"token:abc"`` -> ``("token", "abc")``; with no colon the name is empty (Go)."""
    name, sep, payload = credential.partition(":")
    return (name, payload) if sep else ("", credential)


def hello_frame(
    *,
    name: str,
    connection_id: str,
    client_type: int,
    observe_data_tags: tuple[int, ...] = (),
    credential: str = "",
    wanted_target: str = "",
    function_definition: bytes = b"",
) -> HandshakeFrame:
    """The HandshakeFrame a client opens with (Go: core/client.go connect)."""
    auth_name, auth_payload = split_credential(credential)
    return HandshakeFrame(
        name=name,
        id=connection_id,
        client_type=client_type,
        observe_data_tags=observe_data_tags,
        auth_name=auth_name,
        auth_payload=auth_payload,
        version=SPEC_VERSION,
        wanted_target=wanted_target,
        function_definition=function_definition,
    )


def rejection(message: str) -> RejectedError:
    """The error for a RejectedFrame (``RejectedError.from_message``: an
    ``AuthenticationError`` for a refused credential)."""
    return RejectedError.from_message(message)


class ClientHandshake:
    """The client's side of one handshake.

    ``start`` gives the frame to send; ``receive`` takes the zipper's answer and
    returns the new state, or raises what the answer means.
    """

    def __init__(self, hello: HandshakeFrame) -> None:
        self.hello = hello
        self.state = S.START

    def start(self) -> HandshakeFrame:
        """The HandshakeFrame to send; the state becomes SENT.

        Raises:
            LocalProtocolError: the handshake was started already.
        """
        if self.state is not S.START:
            raise LocalProtocolError(f"handshake already {self.state.value}")
        self.state = S.SENT
        return self.hello

    def receive(self, frame: Frame) -> HandshakeState:
        """The zipper's answer.

        Returns:
            ACCEPTED for a HandshakeAckFrame.

        Raises:
            RejectedError (``AuthenticationError`` for a refused credential): REJECTED.
            ConnectToError: REDIRECTED to ``endpoint``.
            RejectedError: a frame with no row in the table (the state becomes REJECTED).
        """
        after = CLIENT_TRANSITIONS.get((self.state, type(frame)))
        if after is None:
            self.state = S.REJECTED
            raise RejectedError(f"unexpected reply to handshake: {type(frame).__name__}")
        self.state = after
        if isinstance(frame, RejectedFrame):
            raise rejection(frame.message)
        if isinstance(frame, ConnectToFrame):
            raise ConnectToError(frame.endpoint)
        return after


class ZipperHandshake:
    """The zipper's side of one handshake: the first frame, then the policy's decision."""

    def __init__(self) -> None:
        self.state = S.START
        self.hello: HandshakeFrame | None = None

    def receive(self, frame: Frame) -> HandshakeFrame:
        """The client's first frame; returns it as the HandshakeFrame to judge.

        Raises:
            RemoteProtocolError: it is not a HandshakeFrame (Go's message; the state
                becomes REJECTED and the zipper answers with a RejectedFrame).
        """
        after = ZIPPER_TRANSITIONS.get((self.state, type(frame)))
        if after is None or not isinstance(frame, HandshakeFrame):
            self.state = S.REJECTED
            raise RemoteProtocolError(
                f"yomo: handshake read unexpected frame, read: {type(frame).__name__}"
            )
        self.hello = frame
        return frame

    def accept(self) -> HandshakeAckFrame:
        """The policy admitted the client: the frame to answer with; state ACCEPTED."""
        self._decided(S.ACCEPTED)
        return HandshakeAckFrame()

    def reject(self, message: str) -> RejectedFrame:
        """The policy refused: the frame to answer with; state REJECTED."""
        self._decided(S.REJECTED)
        return RejectedFrame(message=message)

    def _decided(self, state: HandshakeState) -> None:
        if self.state is not S.START or self.hello is None:
            raise LocalProtocolError(f"no handshake to decide ({self.state.value})")
        self.state = state
