"""The native zipper's slow lane (``native/src/lane.rs``) with real clients.

Idle connections' QUIC work runs in the lane: the sweeper polls their drivers itself,
a short turn at a time, and their wake-ups queue them there again. Here it must keep
idle connections alive past the idle timeout (their keep-alive PINGs go out through
it), take every one of a burst of closes to its end while a new client connects and a
pair routes frames, and leave no driver behind (the endpoint releases its port only
once its last connection is gone).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest

from yomo.transport import DEFAULT_ZIPPER_SETTINGS
from yomo.transport.native import available as native_available

from .helpers import Clients, eventually, frame_bytes

pytestmark = pytest.mark.skipif(
    not native_available(), reason="yomo._native is not built (no Rust toolchain at install)"
)

CROWD = 200
TAG = 0x21


async def test_idle_connections_live_in_the_lane_and_close_at_once(zipper, clients: Clients):
    settings = dataclasses.replace(DEFAULT_ZIPPER_SETTINGS, backend="native")
    z = await zipper(quic=settings)
    assert z.backend.startswith("native"), z.backend
    crowd = await asyncio.gather(*(clients.source(z, name=f"idle-{i}") for i in range(CROWD)))
    await eventually(lambda: len(z.connections()) == CROWD, f"{CROWD} connections", 30.0)

    # past the lane's grace time (2 s) and the idle timeout (5 s): only the zipper's
    # keep-alive PINGs, which go out from the lane, keep them open (the clients' own
    # keep-alive interval is longer than the idle timeout the zipper asks for)
    await asyncio.sleep(settings.idle_timeout + 1.5)
    assert len(z.connections()) == CROWD, "idle connections were lost in the lane"

    # the crowd closes at once; a new pair connects and routes frames meanwhile
    closing = [asyncio.ensure_future(c.close(drain_timeout=0.1)) for c in crowd]
    _, inbox = await clients.sfn(z, "lane-sfn", [TAG])
    src = await clients.source(z, name="lane-source")
    for i in range(20):
        await src.send(frame_bytes(TAG, f"frame {i}".encode()))
    await asyncio.gather(*closing)
    await eventually(lambda: inbox.count(TAG) == 20, "the new pair's 20 frames", 20.0)
    await eventually(
        lambda: sorted(c.name for c in z.connections()) == ["lane-sfn", "lane-source"],
        "every close handled",
        20.0,
    )

    # every connection's driver ends: stopping releases the port (the endpoint's driver
    # owns the socket until no connection is left)
    port = z.address[1]
    await clients.close_all()
    await z.stop()
    await eventually(lambda: _free(port), f"port {port} released", 30.0)


def _free(port: int) -> bool:
    """Whether the UDP port can be bound again."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
