"""Token auth: the zipper admits only clients presenting its token.

The zipper is configured like a ``zipper.yaml`` with ``auth: {type: token,
token: ...}``; clients pass ``credential="token:<secret>"`` (``yomo run -d``).
A client with a wrong token gets ``yomo.AuthenticationError`` and is not
retried. Runs on loopback and exits by itself::

    python examples/auth_token.py
"""

from __future__ import annotations

import logging
import threading

import yomo
from yomo.zipper.config import AuthConfig, ZipperConfig

SECRET = "s3cret-token"
TAG = 0x21


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # the zipper logs the rejection; keep it quiet
    config = ZipperConfig(
        name="zipper", host="127.0.0.1", port=0, auth=AuthConfig(type="token", token=SECRET)
    )
    got = threading.Event()
    with yomo.Zipper.from_config(config, stats_interval=0) as zipper:
        print(f"zipper  listening on {zipper.addr} with token auth")

        sfn = yomo.StreamFunction(
            "guarded", zipper.addr, observe_data_tags=[TAG], credential=f"token:{SECRET}"
        )

        @sfn.set_handler
        def handle(ctx: yomo.Context) -> None:
            print(f"guarded <- {ctx.data.decode()!r}", flush=True)
            got.set()

        with sfn:
            print("guarded connected with the right token")
            with yomo.Source("trusted", zipper.addr, credential=f"token:{SECRET}") as source:
                print("trusted connected with the right token")
                source.write(TAG, b"hello from a trusted source")
                got.wait(5)

            intruder = yomo.Source("intruder", zipper.addr, credential="token:guess")
            try:
                intruder.connect()
                print("intruder connected?! (this should not happen)")
            except yomo.AuthenticationError as exc:
                print(f"intruder rejected: {exc}")
            finally:
                intruder.close()
        print(f"zipper rejections: {zipper.stats()['rejections']}")


if __name__ == "__main__":
    main()
