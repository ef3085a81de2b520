"""One mesh node for test_mesh_netns: a zipper, a stream function and a source in one process.

Run inside a network namespace (``ip netns exec NS python netns_runner.py CONFIG``),
where CONFIG is JSON: ``{"name", "host", "port", "tag", "peers": [{"name", "host",
"port"}], "lifetime"}``. It talks JSON lines:

- stdout: ``{"ev": "ready"}`` once the function and source are connected,
  ``{"ev": "frame", "payload": str}`` for every frame the function gets,
  ``{"ev": "mesh", "mesh": {...}}`` (the zipper's mesh stats) every 0.2 s,
  ``{"ev": "sent", "payload": str}`` after each send.
- stdin: ``{"cmd": "send", "payload": str}``; end of input stops the node.

The node stops by itself after ``lifetime`` seconds, so nothing outlives a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from typing import Any

from yomo.client.core import ClientCore, ReconnectPolicy
from yomo.transport import TlsConfig
from yomo.wire import ClientType, DataFrame, encode_data_frame, encode_metadata
from yomo.zipper.config import MeshPeer
from yomo.zipper.server import Zipper

__all__ = ["main"]


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def run(config: dict[str, Any]) -> None:
    tag = int(config["tag"])
    peers = [MeshPeer(name=p["name"], host=p["host"], port=int(p["port"])) for p in config["peers"]]
    zipper = Zipper(
        config["name"],
        config["host"],
        int(config["port"]),
        mesh=peers,
        tls=TlsConfig(),
        stats_interval=0,
        mesh_options={"reconnect": ReconnectPolicy(initial_delay=0.2, max_delay=1.0)},
    )
    await zipper.start()
    addr = zipper.addr
    fast = ReconnectPolicy(initial_delay=0.1, max_delay=0.5, connect_timeout=10.0)

    async def on_frame(frame: DataFrame) -> None:
        emit({"ev": "frame", "payload": bytes(frame.payload).decode()})

    sfn = ClientCore(
        f"sfn-{zipper.name}",
        addr,
        ClientType.STREAM_FUNCTION,
        observe_data_tags=[tag],
        tls=TlsConfig(),
        reconnect=fast,
        on_frame=on_frame,
    )
    source = ClientCore(
        f"source-{zipper.name}", addr, ClientType.SOURCE, tls=TlsConfig(), reconnect=fast
    )
    await sfn.connect()
    await source.connect()
    emit({"ev": "ready"})

    async def report() -> None:
        while True:
            emit({"ev": "mesh", "mesh": zipper.stats().get("mesh", {})})
            await asyncio.sleep(0.2)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def commands() -> None:
        while line := await reader.readline():
            command = json.loads(line)
            if command.get("cmd") == "send":
                payload = str(command["payload"])
                await source.send(encode_data_frame(tag, encode_metadata({}), payload.encode()))
                emit({"ev": "sent", "payload": payload})

    reporter = loop.create_task(report())
    try:
        await asyncio.wait_for(commands(), float(config.get("lifetime", 90.0)))
    except asyncio.TimeoutError:
        pass
    finally:
        reporter.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(source.close(drain_timeout=0.5), 2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sfn.close(drain_timeout=0.5), 2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(zipper.stop(), 5.0)


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    asyncio.run(run(json.loads(argv[1])))


if __name__ == "__main__":
    main(sys.argv)
