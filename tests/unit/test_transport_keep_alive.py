"""The qh3/aioquic keep-alive: a PING only when nothing came from the peer for the interval.

As quic-go does. A zipper holding 10,000 idle connections sent 5,000 PINGs a second
from 10,000 sleeping tasks; a peer that sends (data, ACKs, its own PINGs) needs none,
and a timer per connection costs less than a task. The library's connection is a
recording stand-in here: what is checked is which calls the keep-alive makes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from yomo.transport._frame_connection import FrameConnection
from yomo.transport.settings import QuicSettings


class _Quic:
    def __init__(self) -> None:
        self.pings = 0

    def send_ping(self, uid: int) -> None:
        self.pings += 1


class _Protocol:
    def __init__(self, last_rx: float) -> None:
        self._quic = _Quic()
        self._loop = asyncio.get_running_loop()
        self.last_rx = last_rx
        self.transmits = 0

    def transmit(self) -> None:
        self.transmits += 1


def _connection(last_rx: float) -> tuple[FrameConnection, _Protocol]:
    protocol = _Protocol(last_rx)
    conn = FrameConnection(protocol, QuicSettings(), is_client=False)
    conn.start_keep_alive(2.0)
    return conn, protocol


def _when(conn: FrameConnection) -> float:
    assert conn.keepalive is not None
    return conn.keepalive.when()


async def test_a_peer_heard_from_within_the_interval_gets_no_ping() -> None:
    loop = asyncio.get_running_loop()
    heard = loop.time()
    conn, protocol = _connection(heard)
    conn._keep_alive()  # the timer's callback, run by hand
    quic: Any = protocol._quic
    assert quic.pings == 0 and protocol.transmits == 0
    assert _when(conn) == heard + 2.0  # checked again 2 s after the last datagram
    conn.close()


async def test_a_silent_peer_gets_a_ping_and_the_next_check_an_interval_later() -> None:
    loop = asyncio.get_running_loop()
    conn, protocol = _connection(loop.time() - 10.0)
    before = loop.time()
    conn._keep_alive()
    quic: Any = protocol._quic
    assert quic.pings == 1 and protocol.transmits == 1
    assert _when(conn) >= before + 2.0
    conn.close()


async def test_closing_cancels_the_timer_and_a_late_callback_does_nothing() -> None:
    loop = asyncio.get_running_loop()
    conn, protocol = _connection(loop.time() - 10.0)
    timer = conn.keepalive
    conn.close()
    assert timer is not None and timer.cancelled()
    conn._keep_alive()
    quic: Any = protocol._quic
    assert quic.pings == 0 and protocol.transmits == 0
