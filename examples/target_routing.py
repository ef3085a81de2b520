"""Target routing: deliver a frame to one user's stream function only.

Two stream functions observe the same tag, one per user, each with a
``wanted_target``. A source writes with ``write_with_target``: only the
function of that user gets the frame. A frame written without a target goes
to every observer. Runs on loopback and exits by itself::

    python examples/target_routing.py
"""

from __future__ import annotations

import logging
import threading
import time

import yomo

TAG_CHAT = 0x70


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("quic").setLevel(logging.ERROR)
    inbox: dict[str, list[str]] = {"alice": [], "bob": []}
    lock = threading.Lock()

    with yomo.Zipper("zipper", "127.0.0.1", 0, stats_interval=0) as zipper:
        print(f"zipper      listening on {zipper.addr}")
        functions = []
        for user in inbox:
            sfn = yomo.StreamFunction(
                f"inbox-{user}", zipper.addr, observe_data_tags=[TAG_CHAT], wanted_target=user
            )

            def deliver(ctx: yomo.Context, user: str = user) -> None:
                with lock:  # one print at a time: handlers run on worker threads
                    inbox[user].append(ctx.data.decode())
                    print(f"inbox-{user:<5} <- {ctx.data.decode()!r}", flush=True)

            sfn.set_handler(deliver)
            sfn.connect()
            functions.append(sfn)

        with yomo.Source("chat", zipper.addr) as source:
            source.write_with_target(TAG_CHAT, b"hi alice, this is for you only", "alice")
            source.write_with_target(TAG_CHAT, b"hi bob, a private note", "bob")
            source.write_with_target(TAG_CHAT, b"nobody is called carol", "carol")
            source.write(TAG_CHAT, b"announcement to everyone")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with lock:
                    if len(inbox["alice"]) == 2 and len(inbox["bob"]) == 2:
                        break
                time.sleep(0.01)
        for sfn in functions:
            sfn.close()
    for user, messages in inbox.items():
        print(f"{user} got {len(messages)}: {messages}")


if __name__ == "__main__":
    main()
