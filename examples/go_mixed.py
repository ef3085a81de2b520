"""A mixed Go + Python pipeline: Go and Python sources, functions and sinks on one zipper.

Uses the Go YoMo peers of the interop tests (tests/interop/go, Go YoMo
v1.22.3, built once by tests/interop/goharness.py into .cache/go):

1. Go source -> Python function (uppercase, 0x33 -> 0x34) -> Go sink
2. Python source -> Go function (prefix "go:", 0x35 -> 0x36) -> Python sink

Needs Go on PATH (skips otherwise); the first run downloads and builds Go
YoMo, later runs reuse the build::

    python examples/go_mixed.py
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
from pathlib import Path

import yomo

REPO = Path(__file__).resolve().parents[1]
COUNT = 5
SIZE = 24


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("quic").setLevel(logging.ERROR)
    sys.path.insert(0, str(REPO / "tests" / "interop"))
    from goharness import GoPeers, build_go_bins, expected_payload, find_go_toolchain, transform

    toolchain = find_go_toolchain()
    if toolchain is None:
        print("skipped: this example needs Go (no `go` on PATH)")
        return 0
    print(f"using {toolchain.version}; building the Go peers (cached after the first run)...")
    bins = build_go_bins(toolchain)
    print(f"Go peers ready ({bins.yomo_cli_version}, {'cached' if bins.cached else 'built'})")

    peers = GoPeers(bins)
    got: list[bytes] = []
    got_all = threading.Event()
    try:
        with yomo.Zipper("py-zipper", "127.0.0.1", 0, stats_interval=0) as zipper:
            print(f"python zipper listening on {zipper.addr}")

            # 1. Go source -> Python function -> Go sink
            upper = yomo.StreamFunction("py-upper", zipper.addr, observe_data_tags=[0x33])
            upper.set_handler(lambda ctx: ctx.write(0x34, ctx.data.upper()))
            # 2. ... -> Go function -> Python sink
            sink = yomo.StreamFunction("py-sink", zipper.addr, observe_data_tags=[0x36])

            @sink.set_handler
            def show(ctx: yomo.Context) -> None:
                got.append(ctx.data)
                print(f"py-sink   <- 0x36 {ctx.data.decode()!r} (written by the Go function)")
                if len(got) == COUNT:
                    got_all.set()

            with upper, sink:
                go_sink = peers.sink(zipper.addr, observe=[0x34], mode="handler", name="go-sink")
                peers.sfn(
                    zipper.addr,
                    observe=[0x35],
                    out_tag=0x36,
                    transform="prefix:go:",
                    mode="handler",
                    name="go-prefix",
                )
                print("go-sink and go-prefix (Go stream functions) connected")

                print(f"go-source -> 0x33 {COUNT} payloads of {SIZE} bytes")
                peers.source(zipper.addr, n=COUNT, sizes=[SIZE], tags=[0x33], name="go-source")
                frames = go_sink.wait_for(lambda p: len(p.frames()) >= COUNT and p.frames(), 15)
                for f in frames[:COUNT]:
                    want = transform(expected_payload(f["seq"], SIZE), "upper")
                    ok = f["sha256"] == hashlib.sha256(want).hexdigest()
                    print(
                        f"go-sink   <- 0x{f['tag']:x} seq {f['seq']} {want[8:]!r} "
                        f"(uppercased by Python, bytes match: {ok})"
                    )

                with yomo.Source("py-source", zipper.addr) as source:
                    for i in range(COUNT):
                        source.write(0x35, f"python says {i}".encode())
                    print(f"py-source -> 0x35 {COUNT} messages")
                    got_all.wait(10)
            print(f"zipper connections: {zipper.stats()['connections']}")
            peers.stop_all()  # before the zipper goes away, so the Go peers close at once
    finally:
        peers.stop_all()
    print(f"done: Go sink got {len(go_sink.frames())}, Python sink got {len(got)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
