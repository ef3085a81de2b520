"""Basic pipeline: source -> uppercase stream function -> sink stream function.

Everything runs in this process on loopback: a zipper on a free port, a
function that uppercases tag 0x33 into tag 0x34, a sink that observes 0x34,
and a source writing to 0x33. Run it with::

    python examples/basic_pipeline.py              # 10 messages, then exit
    python examples/basic_pipeline.py --seconds 5  # a steady flow for 5 s
"""

from __future__ import annotations

import argparse
import logging
import threading
import time

import yomo

TAG_TEXT = 0x33
TAG_UPPER = 0x34


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10, help="messages to write (default 10)")
    parser.add_argument("--seconds", type=float, default=0, help="write for this long instead")
    parser.add_argument("--rate", type=float, default=5, help="messages per second with --seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("quic").setLevel(logging.ERROR)  # the QUIC library's own chatter

    counts = {"written": 0, "uppercased": 0, "received": 0}
    lock = threading.Lock()
    all_received = threading.Event()

    # The zipper routes every frame by its tag. Port 0 picks a free port.
    with yomo.Zipper("zipper", "127.0.0.1", 0, stats_interval=0) as zipper:
        print(f"zipper   listening on {zipper.addr}")

        # A stream function: observes 0x33, writes the uppercase text to 0x34.
        uppercase = yomo.StreamFunction("uppercase", zipper.addr, observe_data_tags=[TAG_TEXT])

        @uppercase.set_handler
        def to_upper(ctx: yomo.Context) -> None:
            ctx.write(TAG_UPPER, ctx.data.upper())
            with lock:
                counts["uppercased"] += 1

        # A sink: another stream function, observing 0x34.
        sink = yomo.StreamFunction("sink", zipper.addr, observe_data_tags=[TAG_UPPER])

        @sink.set_handler
        def show(ctx: yomo.Context) -> None:
            with lock:
                counts["received"] += 1
                n = counts["received"]
            print(f"sink     <- 0x{ctx.tag:x} {ctx.data.decode()!r}  [{n} received]", flush=True)
            if n >= counts["written"] and writing_done.is_set():
                all_received.set()

        writing_done = threading.Event()
        with uppercase, sink, yomo.Source("source", zipper.addr) as source:
            start = time.monotonic()
            i = 0
            while True:
                if args.seconds:
                    if time.monotonic() - start >= args.seconds:
                        break
                elif i >= args.count:
                    break
                i += 1
                text = f"hello yomo #{i}"
                source.write(TAG_TEXT, text.encode())
                with lock:
                    counts["written"] += 1
                print(f"source   -> 0x{TAG_TEXT:x} {text!r}", flush=True)
                if args.seconds:
                    time.sleep(1 / args.rate)
            writing_done.set()
            with lock:
                if counts["received"] >= counts["written"]:
                    all_received.set()
            all_received.wait(5)
            elapsed = time.monotonic() - start
            stats = zipper.stats()["tags"]
        print(
            f"done: wrote {counts['written']}, uppercased {counts['uppercased']}, "
            f"sink received {counts['received']} in {elapsed:.2f} s"
        )
        print(
            f"zipper: 0x33 in {stats[TAG_TEXT]['frames_in']} out {stats[TAG_TEXT]['frames_out']}, "
            f"0x34 in {stats[TAG_UPPER]['frames_in']} out {stats[TAG_UPPER]['frames_out']}"
        )


if __name__ == "__main__":
    main()
