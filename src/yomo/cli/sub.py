"""``yomo sub TAG...``: print the frames of some tags as they pass the zipper.

It connects as a stream function observing the tags. The zipper copies every
frame to every observer, so subscribing takes nothing away from the real
functions. One line per frame, printed at once; ``--json`` prints one object
per line instead. Ctrl-C (or SIGTERM, or a closed stdout) ends it with exit 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import click

from yomo.cli._client_opts import (
    ClientArgs,
    client_options,
    run_until_signal,
    tag_argument,
)

__all__ = ["format_frame", "sub"]


def _as_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if all(c.isprintable() or c in "\t\r\n" for c in text) else None


def format_frame(
    tag: int, data: bytes, tid: str, source_id: str, *, as_json: bool, as_hex: bool
) -> str:
    """One output line for a frame."""
    text = None if as_hex else _as_text(data)
    if as_json:
        out: dict[str, Any] = {"tag": f"{tag:#x}", "size": len(data), "tid": tid}
        out["source_id"] = source_id
        if text is not None:
            out["text"] = text
        else:
            out["hex"] = data.hex()
        return json.dumps(out, ensure_ascii=False)
    shown = repr(text)[1:-1] if text is not None else "hex:" + data.hex()
    return f"[{tag:#x}] {len(data)} bytes tid={tid or '-'}: {shown}"


@click.command()
@tag_argument(many=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per frame.")
@click.option("--hex", "as_hex", is_flag=True, help="Always print the data in hex.")
@click.option("--count", type=click.IntRange(min=1), help="Exit after N frames.")
@click.option("--target", default=None, help="Also receive frames written with this target.")
@client_options
def sub(
    tags: tuple[int, ...],
    as_json: bool,
    as_hex: bool,
    count: int | None,
    target: str | None,
    client: ClientArgs,
) -> None:
    """Print every frame of TAG... (0x33 or 51) that passes the zipper, until Ctrl-C.

    \b
    yomo sub 0x33 0x34 -z localhost:9000
    yomo sub 0x33 --json | jq .text
    """

    async def main(stop: asyncio.Event) -> int:
        import yomo.aio

        seen = 0

        async def handler(ctx: yomo.aio.AsyncContext) -> None:
            nonlocal seen
            if stop.is_set():
                return
            line = format_frame(
                ctx.tag, ctx.data, ctx.tid, ctx.source_id, as_json=as_json, as_hex=as_hex
            )
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except BrokenPipeError:  # e.g. `yomo sub 0x33 | head -1`: stop quietly
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                stop.set()
                return
            seen += 1
            if count is not None and seen >= count:
                stop.set()

        sfn = yomo.aio.StreamFunction(
            **client.client_kwargs("yomo-sub"), observe_data_tags=tags, wanted_target=target or ""
        )
        sfn.set_handler(handler)
        await sfn.connect()
        shown = ", ".join(f"{t:#x}" for t in tags)
        click.echo(
            f"yomo: subscribed to [{shown}] at {client.zipper_addr} (Ctrl-C to stop)", err=True
        )
        try:
            waiting = asyncio.ensure_future(sfn.wait())  # ends if the zipper closes us
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in (waiting, stopping):
                task.cancel()
        finally:
            await sfn.close(timeout=2.0)
        return seen

    seen = run_until_signal(main)
    click.echo(f"yomo: received {seen} frame(s)", err=True)
