"""Clients with zero-length QUIC connection ids (as every Go quic-go client) reach the zipper.

qh3 2.1 cannot serve them, so the zipper hands such connections to aioquic on
the same socket (transport/_server.py ``_SplitServer``). The client here is a bare
aioquic connection with ``connection_id_length=0``, so no Go toolchain is needed.
This is the pure-Python path's split (the zipper runs on qh3 here); the native path
(quinn) serves quic-go's empty ids itself, which the Go interop suite covers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aioquic.asyncio import QuicConnectionProtocol, connect
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent, StreamDataReceived

from yomo._version import SPEC_VERSION
from yomo.transport import DEFAULT_ZIPPER_SETTINGS
from yomo.wire import ClientType, FrameDecoder, HandshakeAckFrame, HandshakeFrame
from yomo.zipper.server import Zipper

from .helpers import Inbox, eventually, frame_bytes

__all__: list[str] = []


class _Raw(QuicConnectionProtocol):
    def __init__(self, quic: Any, *args: Any, **kwargs: Any) -> None:
        # An endpoint with empty ids has no others to offer: aioquic would send
        # NEW_CONNECTION_ID frames with empty ids, which the peer must refuse
        # (quic-go sends none).
        quic._replenish_connection_ids = lambda: None
        super().__init__(quic, *args, **kwargs)
        self.decoder = FrameDecoder()
        self.frames: list[Any] = []

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            self.frames.extend(self.decoder.feed(event.data))


async def test_a_client_with_an_empty_connection_id_is_served(
    zipper: Callable[..., Awaitable[Zipper]], clients: Any
) -> None:
    z = await zipper(quic=replace(DEFAULT_ZIPPER_SETTINGS, backend="qh3"))
    inbox = Inbox()
    await clients.sfn(z, "sfn", tags=[0x33], inbox=inbox)
    host, port = z.address
    config = QuicConfiguration(is_client=True, alpn_protocols=["yomo"], connection_id_length=0)
    config.verify_mode = ssl.CERT_NONE
    async with contextlib.AsyncExitStack() as stack:
        proto = await asyncio.wait_for(
            stack.enter_async_context(
                connect(host, port, configuration=config, create_protocol=_Raw)
            ),
            5,
        )
        assert isinstance(proto, _Raw)
        assert proto._quic.host_cid == b""
        stream = proto._quic.get_next_available_stream_id()
        hello = HandshakeFrame(
            name="empty-cid", id="empty-cid-0", client_type=ClientType.SOURCE, version=SPEC_VERSION
        )
        proto._quic.send_stream_data(stream, hello.encode())
        proto.transmit()
        await eventually(lambda: bool(proto.frames), "the handshake answer")
        assert isinstance(proto.frames[0], HandshakeAckFrame)
        proto._quic.send_stream_data(stream, frame_bytes(0x33, b"through aioquic"))
        proto.transmit()
        await inbox.wait_payload(b"through aioquic")
        assert "empty-cid" in [c.name for c in z.connections()]
