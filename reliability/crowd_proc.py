"""Many idle connections from one process: ``python crowd_proc.py JSON``.

Opens ``count`` connections (``parallel`` handshakes in flight; a dial that fails
is tried up to ``attempts`` times), each a raw Source handshake, and prints ``OPEN accepted refused failed``. Then, on a
``close`` line on stdin, closes every accepted connection at once (each sends
its CONNECTION_CLOSE in the same loop turn) and prints ``CLOSED``; on SIGTERM
it exits. Used for the connection flood (to the cap) and the mass close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
from typing import Any

__all__ = ["main"]


async def _run(opts: dict[str, Any]) -> None:
    from yomo._version import SPEC_VERSION
    from yomo.client.core import parse_address
    from yomo.transport import QuicSettings, TlsConfig, dial
    from yomo.wire import ClientType, HandshakeAckFrame, HandshakeFrame

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host, port = parse_address(opts["zipper"])
    settings = QuicSettings(idle_timeout=60.0, keep_alive=20.0)
    accepted: list[Any] = []
    refused = failed = 0
    reasons: dict[str, int] = {}
    gate = asyncio.Semaphore(int(opts.get("parallel", 16)))

    async def one(i: int) -> None:
        nonlocal refused, failed
        async with gate:
            for attempt in range(int(opts.get("attempts", 1))):
                try:
                    conn = await dial(host, port, tls=TlsConfig(), settings=settings)
                    break
                except Exception as exc:  # redial, as a client would (a busy zipper)
                    key = str(exc)[:80] + (
                        " (redialled)" if attempt + 1 < opts.get("attempts", 1) else ""
                    )
                    reasons[key] = reasons.get(key, 0) + 1
            else:
                failed += 1
                return
            hello = HandshakeFrame(
                name=f"crowd-{i}",
                id=f"crowd-{i}-0",
                client_type=ClientType.SOURCE,
                version=SPEC_VERSION,
                auth_name="token" if opts.get("token") else "",
                auth_payload=opts.get("token", ""),
            )
            try:
                conn.send_nowait(hello)  # the zipper may have closed it already (a full zipper)
                reply = await asyncio.wait_for(conn.read_frame(), 10.0)
            except Exception as exc:
                refused += 1
                key = (conn.close_reason or str(exc))[:80]
                reasons[key] = reasons.get(key, 0) + 1
                conn.close("crowd: no ack")
                return
            if isinstance(reply, HandshakeAckFrame):
                accepted.append(conn)
            else:
                refused += 1
                key = getattr(reply, "message", type(reply).__name__)[:80]
                reasons[key] = reasons.get(key, 0) + 1
                conn.close("crowd: refused")

    started = time.time()
    await asyncio.gather(*(one(i) for i in range(int(opts["count"]))))
    opened = time.time()
    alive = [c for c in accepted if not c.closed]
    print(f"OPEN {len(alive)} {refused} {failed}", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    closed_at = time.time()
    if line.strip() == "close":
        for conn in alive:
            conn.close("crowd: mass close")
    print("CLOSED", flush=True)
    with open(opts["out"], "w") as f:
        json.dump(
            {
                "accepted": len(accepted),
                "alive_before_close": len(alive),
                "refused": refused,
                "failed": failed,
                "reasons": reasons,
                "open_s": round(opened - started, 2),
                "closed_at": closed_at,
            },
            f,
        )
    await asyncio.sleep(0.5)  # let the CONNECTION_CLOSE datagrams leave
    with contextlib.suppress(Exception):
        for conn in alive:
            await conn.aclose()


def main(argv: list[str]) -> int:
    asyncio.run(_run(json.loads(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
