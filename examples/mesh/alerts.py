"""A stream function for zipper-eu: prints every reading, wherever it was written.

yomo run -z 127.0.0.1:9002 -d token:demo-secret alerts.py
"""

from __future__ import annotations

from yomo import Context

__all__ = ["DATA_TAGS", "handler"]

DATA_TAGS = [0x33]


def handler(ctx: Context) -> None:
    print(f"alerts on zipper-eu got tag 0x{ctx.tag:x}: {ctx.data.decode()}", flush=True)
