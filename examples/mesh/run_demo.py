"""Three meshed zippers in one process: a source in Asia, a stream function in Europe.

Loads zipper-us.yaml, zipper-eu.yaml and zipper-asia.yaml from this folder,
moves them to free loopback ports (so the demo runs next to anything already on
9001-9003), starts the three zippers, attaches a stream function to zipper-eu and
a source to zipper-asia, prints every frame as it crosses, prints the mesh link
stats, and exits by itself (status 0 when every frame crossed).

    python examples/mesh/run_demo.py
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
import sys
from pathlib import Path

import yomo.aio
from yomo.zipper.config import ZipperConfig, load_config

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
REGIONS = ("us", "eu", "asia")
TAG = 0x33
CREDENTIAL = "token:demo-secret"
FRAMES = 5


def free_ports(n: int) -> list[int]:
    """Ports that were free a moment ago (bound to port 0, then released)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def load_on_free_ports() -> list[ZipperConfig]:
    configs = [load_config(HERE / f"zipper-{region}.yaml") for region in REGIONS]
    ports = dict(zip((c.name for c in configs), free_ports(len(configs)), strict=True))
    return [
        dataclasses.replace(
            c,
            port=ports[c.name],
            mesh=tuple(dataclasses.replace(p, port=ports.get(p.name, p.port)) for p in c.mesh),
        )
        for c in configs
    ]


async def wait_for_links(zippers: list[yomo.aio.Zipper], timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        states = {z.name: {p: s["state"] for p, s in z.stats()["mesh"].items()} for z in zippers}
        if all(state == "up" for links in states.values() for state in links.values()):
            print(f"mesh is up: {json.dumps(states)}")
            return
        if loop.time() > deadline:
            raise SystemExit(f"mesh links did not come up in {timeout:g} s: {states}")
        await asyncio.sleep(0.1)


async def main() -> int:
    configs = load_on_free_ports()
    zippers = [yomo.aio.Zipper.from_config(c, stats_interval=0) for c in configs]
    by_region = dict(zip(REGIONS, zippers, strict=True))
    for z in zippers:
        await z.start()
        print(f"started {z.name} on {z.addr}")
    received: list[str] = []
    done = asyncio.Event()

    async def handler(ctx: yomo.aio.AsyncContext) -> None:
        text = ctx.data.decode()
        received.append(text)
        print(f"  zipper-eu / sfn 'alerts' got tag 0x{ctx.tag:x}: {text}")
        if len(received) >= FRAMES:
            done.set()

    sfn = yomo.aio.StreamFunction(
        "alerts", by_region["eu"].addr, observe_data_tags=[TAG], credential=CREDENTIAL
    )
    sfn.set_handler(handler)
    source = yomo.aio.Source("sensor", by_region["asia"].addr, credential=CREDENTIAL)
    try:
        await wait_for_links(zippers)
        await sfn.connect()
        await source.connect()
        for i in range(FRAMES):
            text = f"reading {i} from asia"
            print(f"zipper-asia / source 'sensor' writes: {text}")
            await source.write(TAG, text.encode())
            await asyncio.sleep(0.2)
        try:
            await asyncio.wait_for(done.wait(), 10.0)
        except asyncio.TimeoutError:
            print(f"only {len(received)} of {FRAMES} frames crossed in 10 s")
        for z in zippers:
            print(f"{z.name} mesh stats:")
            for peer, link in z.stats()["mesh"].items():
                print(
                    f"  -> {peer}: {link['state']}, forwarded {link['forwarded']}, "
                    f"dropped {link['dropped']}"
                )
    finally:
        await source.close()
        await sfn.close()
        await asyncio.gather(*(z.stop() for z in zippers))
    ok = len(received) == FRAMES
    print("done: every frame crossed the mesh" if ok else "done: some frames did not cross")
    return 0 if ok else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("quic").setLevel(logging.ERROR)  # the QUIC library logs every peer close
    sys.exit(asyncio.run(main()))
