"""Our zipper in a process of its own, for the suite: ``python zipper_proc.py CONFIG [OPTIONS_JSON]``.

``yomo serve -c CONFIG`` with the few zipper options the YAML file does not carry
(slow-consumer policy, handshake timeout, QUIC settings). Prints ``READY host:port``
on stdout once listening; SIGTERM/SIGINT stop it the way ``yomo serve`` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
import sys
from typing import Any

__all__ = ["main"]


async def _serve(config_path: str, options: dict[str, Any]) -> None:
    from yomo.aio import Zipper
    from yomo.transport import DEFAULT_ZIPPER_SETTINGS
    from yomo.zipper.config import load_config

    config = load_config(config_path)
    stats_out = options.pop("stats_out", None)
    quic = options.pop("quic", None)
    if quic:
        options["quic"] = dataclasses.replace(DEFAULT_ZIPPER_SETTINGS, **quic)
    zipper = Zipper.from_config(config, **options)
    await zipper.start()
    print(f"READY {zipper.addr}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if stats_out:
        with open(stats_out, "w") as f:
            json.dump(zipper.stats(), f, default=str)
    await asyncio.wait_for(zipper.stop("received SIGTERM"), 10.0)


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = json.loads(argv[2]) if len(argv) > 2 else {}
    asyncio.run(_serve(argv[1], options))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
