"""A small UDP relay that impairs a link: ``python relay.py LISTEN_PORT TARGET_PORT``.

This kernel has no ``netem`` qdisc, so the suite puts this relay between two
zippers instead: every datagram, both ways, is delayed by ``delay_ms`` plus a
uniform ``jitter_ms``, dropped with probability ``loss``, or dropped outright
while ``cut`` is on (a partition). Settings come as JSON lines on stdin, e.g.
``{"delay_ms": 50, "jitter_ms": 5, "loss": 0.01}`` or ``{"cut": true}``; it
prints ``READY`` once bound and its counters as JSON to stderr when it ends.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import threading
from typing import Any

__all__ = ["Impairment", "main"]


class Impairment:
    """What the relay does to each datagram; changed at run time from stdin."""

    def __init__(self) -> None:
        self.delay_ms = 0.0
        self.jitter_ms = 0.0
        self.loss = 0.0
        self.cut = False
        self.forwarded = 0
        self.dropped = 0

    def update(self, change: dict[str, Any]) -> None:
        for key in ("delay_ms", "jitter_ms", "loss"):
            if key in change:
                setattr(self, key, float(change[key]))
        if "cut" in change:
            self.cut = bool(change["cut"])

    def delay(self) -> float | None:
        """Seconds to hold a datagram, or None to drop it."""
        if self.cut or (self.loss and random.random() < self.loss):
            self.dropped += 1
            return None
        self.forwarded += 1
        return (self.delay_ms + random.uniform(0, self.jitter_ms)) / 1000


class _Upstream(asyncio.DatagramProtocol):
    """The relay's socket towards the target for one client address."""

    def __init__(self, relay: _Relay, client: Any) -> None:
        self.relay = relay
        self.client = client
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay.later(self.relay.transport.sendto, data, self.client)


class _Relay(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int], imp: Impairment) -> None:
        self.target = target
        self.imp = imp
        self.transport: Any = None
        self.upstreams: dict[Any, _Upstream] = {}
        self.loop = asyncio.get_event_loop()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def later(self, send: Any, data: bytes, *args: Any) -> None:
        delay = self.imp.delay()
        if delay is None:
            return
        if delay <= 0:
            send(data, *args)
        else:
            self.loop.call_later(delay, send, data, *args)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        up = self.upstreams.get(addr)
        if up is None:
            up = self.upstreams[addr] = _Upstream(self, addr)
            self.loop.create_task(self._open(up, data))
            return
        if up.transport is not None:
            self.later(up.transport.sendto, data)

    async def _open(self, up: _Upstream, first: bytes) -> None:
        await self.loop.create_datagram_endpoint(lambda: up, remote_addr=self.target)
        self.later(up.transport.sendto, first)


async def _run(listen_port: int, target_port: int) -> Impairment:
    imp = Impairment()
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(
        lambda: _Relay(("127.0.0.1", target_port), imp), local_addr=("127.0.0.1", listen_port)
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip():
                loop.call_soon_threadsafe(imp.update, json.loads(line))

    threading.Thread(target=read_stdin, daemon=True).start()
    print("READY", flush=True)
    await stop.wait()
    return imp


def main(argv: list[str]) -> int:
    imp = asyncio.run(_run(int(argv[1]), int(argv[2])))
    print(json.dumps({"forwarded": imp.forwarded, "dropped": imp.dropped}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
