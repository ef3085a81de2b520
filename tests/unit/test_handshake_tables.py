"""The handshake as tables (``yomo.session.handshake``): frames in, state and errors out."""

from __future__ import annotations

import pytest

from yomo._version import SPEC_VERSION
from yomo.errors import (
    AuthenticationError,
    ConnectToError,
    LocalProtocolError,
    RejectedError,
    RemoteProtocolError,
)
from yomo.session.handshake import (
    CLIENT_TRANSITIONS,
    ZIPPER_TRANSITIONS,
    ClientHandshake,
    HandshakeState,
    ZipperHandshake,
    hello_frame,
    rejection,
    split_credential,
)
from yomo.wire import (
    ClientType,
    ConnectToFrame,
    DataFrame,
    GoawayFrame,
    HandshakeAckFrame,
    HandshakeFrame,
    RejectedFrame,
    decode_frame,
)

S = HandshakeState


def _hello(**options: object) -> HandshakeFrame:
    fields: dict[str, object] = {
        "name": "src",
        "connection_id": "id-0",
        "client_type": ClientType.SOURCE,
    }
    fields.update(options)
    return hello_frame(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("credential", "expected"),
    [
        ("token:abc", ("token", "abc")),
        ("abc", ("", "abc")),
        ("", ("", "")),
        ("a:b:c", ("a", "b:c")),
    ],
)
def test_credential_is_split_like_go(credential: str, expected: tuple[str, str]) -> None:
    assert split_credential(credential) == expected
    hello = _hello(credential=credential)
    assert (hello.auth_name, hello.auth_payload) == expected


def test_hello_carries_the_spec_version_and_survives_the_codec() -> None:
    hello = _hello(observe_data_tags=(0x33, 0x34), wanted_target="t", function_definition=b"{}")
    assert hello.version == SPEC_VERSION
    assert decode_frame(hello.encode()) == hello


def test_client_accepted_by_an_ack() -> None:
    hs = ClientHandshake(_hello())
    assert hs.state is S.START
    assert hs.start() == hs.hello
    assert hs.state is S.SENT
    assert hs.receive(HandshakeAckFrame()) is S.ACCEPTED
    assert hs.state is S.ACCEPTED


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("invalid token: x", AuthenticationError),
        ("authentication not found: jwt", AuthenticationError),
        ("version negotiation failed: client=1, server=2", RejectedError),
    ],
)
def test_client_rejected(message: str, error: type[Exception]) -> None:
    hs = ClientHandshake(_hello())
    hs.start()
    with pytest.raises(error) as info:
        hs.receive(RejectedFrame(message=message))
    assert type(info.value) is error
    assert info.value.reason == message  # type: ignore[attr-defined]
    assert hs.state is S.REJECTED
    assert type(rejection(message)) is error


def test_client_redirected_by_connect_to() -> None:
    hs = ClientHandshake(_hello())
    hs.start()
    with pytest.raises(ConnectToError) as info:
        hs.receive(ConnectToFrame(endpoint="10.0.0.2:9000"))
    assert info.value.endpoint == "10.0.0.2:9000"
    assert hs.state is S.REDIRECTED


@pytest.mark.parametrize(
    "frame", [DataFrame(tag=1), GoawayFrame(message="bye"), HandshakeFrame(name="x")]
)
def test_client_refuses_a_frame_without_a_row(frame: object) -> None:
    hs = ClientHandshake(_hello())
    hs.start()
    with pytest.raises(
        RejectedError, match=f"unexpected reply to handshake: {type(frame).__name__}"
    ):
        hs.receive(frame)  # type: ignore[arg-type]
    assert hs.state is S.REJECTED


def test_client_answer_before_start_or_second_start_is_refused() -> None:
    hs = ClientHandshake(_hello())
    with pytest.raises(RejectedError):
        hs.receive(HandshakeAckFrame())  # nothing was sent: no row for START
    hs = ClientHandshake(_hello())
    hs.start()
    with pytest.raises(LocalProtocolError):
        hs.start()


def test_zipper_takes_a_handshake_then_decides() -> None:
    hs = ZipperHandshake()
    hello = _hello()
    assert hs.receive(hello) is hello
    assert hs.hello is hello
    assert hs.accept() == HandshakeAckFrame()
    assert hs.state is S.ACCEPTED
    with pytest.raises(LocalProtocolError):
        hs.reject("too late")

    hs = ZipperHandshake()
    hs.receive(hello)
    assert hs.reject("no") == RejectedFrame(message="no")
    assert hs.state is S.REJECTED


@pytest.mark.parametrize("frame", [DataFrame(tag=1), HandshakeAckFrame(), GoawayFrame()])
def test_zipper_refuses_another_first_frame_with_gos_message(frame: object) -> None:
    hs = ZipperHandshake()
    with pytest.raises(RemoteProtocolError) as info:
        hs.receive(frame)  # type: ignore[arg-type]
    assert info.value.message == (
        f"yomo: handshake read unexpected frame, read: {type(frame).__name__}"
    )
    assert hs.state is S.REJECTED
    with pytest.raises(LocalProtocolError):
        hs.accept()


def test_tables_only_name_real_states_and_frames() -> None:
    for (state, frame_type), after in {**CLIENT_TRANSITIONS, **ZIPPER_TRANSITIONS}.items():
        assert isinstance(state, HandshakeState) and isinstance(after, HandshakeState)
        assert hasattr(frame_type, "TYPE")
        assert after is not state
