"""``yomo pub TAG [DATA]``: write frames to a zipper from the shell, as a Source.

The data comes from the argument, ``--file FILE`` or standard input (``--lines``
makes each line a frame, as it arrives, so ``tail -f log | yomo pub 0x33 --lines``
streams). ``--count`` repeats the data; ``--rate`` caps frames per second.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from typing import BinaryIO

import click

from yomo.cli._client_opts import (
    ClientArgs,
    client_options,
    run_until_signal,
    tag_argument,
)

__all__ = ["pub"]

_RATE_HELP = "Write at most N frames per second (default: as fast as the zipper takes them)."


async def _payloads(
    data: str | None, source: BinaryIO | None, lines: bool, count: int
) -> AsyncIterator[bytes]:
    if data is not None:
        payload = data.encode()
        for _ in range(count):
            yield payload
        return
    assert source is not None
    if not lines:
        payload = await asyncio.to_thread(source.read)
        for _ in range(count):
            yield payload
        return
    while True:  # line by line, as the lines come (stdin may be a live pipe)
        line = await asyncio.to_thread(source.readline)
        if not line:
            return
        yield line.rstrip(b"\r\n")


@click.command()
@tag_argument(many=False)
@click.argument("data", required=False)
@click.option(
    "-f",
    "--file",
    "file",
    type=click.File("rb"),
    default=None,
    help="Read the data from FILE ('-' for standard input).",
)
@click.option("--lines", is_flag=True, help="Write each line of the file or stdin as a frame.")
@click.option("--count", type=click.IntRange(min=1), default=1, help="Write the data N times.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), metavar="N", help=_RATE_HELP)
@click.option("--target", default=None, help="Write only to functions with this wanted target.")
@client_options
def pub(
    tag: int,
    data: str | None,
    file: BinaryIO | None,
    lines: bool,
    count: int,
    rate: float | None,
    target: str | None,
    client: ClientArgs,
) -> None:
    """Write DATA (or --file, or stdin) to the zipper under TAG (0x33 or 51).

    \b
    yomo pub 0x33 hello -z localhost:9000
    yomo pub 0x33 --count 100 --rate 10 tick
    echo '{"t": 21.5}' | yomo pub 0x33
    tail -f app.log | yomo pub 0x33 --lines
    """
    if data is not None and file is not None:
        raise click.UsageError("give DATA or --file, not both")
    if lines and data is not None:
        raise click.UsageError("--lines reads a file or stdin; it does not go with DATA")
    if lines and count != 1:
        raise click.UsageError("--count repeats DATA or a whole file; it does not go with --lines")
    if data is None and file is None:
        if sys.stdin.isatty():
            raise click.UsageError("give DATA, --file FILE, or pipe the data on stdin")
        file = sys.stdin.buffer

    async def main(stop: asyncio.Event) -> tuple[int, int]:
        import yomo.aio

        source = yomo.aio.Source(**client.client_kwargs("yomo-pub"))
        await source.connect()
        frames = written = 0
        interval = 1.0 / rate if rate else 0.0
        started = time.monotonic()
        try:
            async for payload in _payloads(data, file, lines, count):
                if stop.is_set():
                    break
                if interval:
                    delay = started + frames * interval - time.monotonic()
                    if delay > 0:
                        try:
                            await asyncio.wait_for(stop.wait(), delay)
                            break  # stopped while waiting
                        except asyncio.TimeoutError:
                            pass
                if target:
                    await source.write_with_target(tag, payload, target)
                else:
                    await source.write(tag, payload)
                frames += 1
                written += len(payload)
        finally:
            await source.close()
        return frames, written

    frames, written = run_until_signal(main)
    click.echo(
        f"yomo: wrote {frames} frame(s), {written} bytes, under tag {tag:#x} to {client.zipper_addr}",
        err=True,
    )
