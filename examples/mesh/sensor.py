"""A source for zipper-asia: writes one reading a second, ten in all.

python sensor.py [ZIPPER_ADDR]     (default 127.0.0.1:9003)
"""

from __future__ import annotations

import sys
import time

import yomo

__all__ = ["main"]


def main(addr: str) -> None:
    with yomo.Source("sensor", addr, credential="token:demo-secret") as source:
        for i in range(10):
            text = f"reading {i} from asia"
            source.write(0x33, text.encode())
            print(f"sensor on zipper-asia wrote: {text}", flush=True)
            time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9003")
