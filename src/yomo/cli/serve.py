"""``yomo serve``: run a zipper from a config file until SIGINT/SIGTERM (Go: cli/serve.go)."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
from collections.abc import Callable
from typing import Protocol

import click

from yomo._signals import add_loop_signals, remove_loop_signals
from yomo.errors import YomoError
from yomo.zipper.config import DEFAULT_CONFIG, ZipperConfig, load_config

__all__ = ["serve", "serve_zipper"]

logger = logging.getLogger("yomo.cli")

#: Seconds ``stop()`` may take after a signal before it is cancelled.
_STOP_TIMEOUT = 10.0


class _Zipper(Protocol):
    """The part of ``yomo.aio.Zipper`` this command drives."""

    @property
    def address(self) -> tuple[str, int]: ...

    async def serve(self) -> None: ...

    async def stop(self, reason: str) -> None: ...


def _zipper_factory() -> Callable[..., _Zipper]:
    # Imported lazily: loading the QUIC stack is only worth it once the config is good.
    factory: Callable[..., _Zipper] = importlib.import_module("yomo.aio").Zipper.from_config
    return factory


async def serve_zipper(config: ZipperConfig, *, stats_interval: float = 30.0) -> None:
    """Serve a zipper until SIGINT or SIGTERM; a second signal stops it at once.

    Args:
        config: What to serve.
        stats_interval: seconds between two INFO summary lines; 0 for none.

    Raises:
        YomoError, OSError: the zipper could not start (e.g. the port is taken).
    """
    zipper = _zipper_factory()(
        config, logger=logging.getLogger("yomo.zipper"), stats_interval=stats_interval
    )
    loop = asyncio.get_running_loop()
    serving = asyncio.ensure_future(zipper.serve())
    stopping: set[asyncio.Task[None]] = set()

    def on_signal(name: str) -> None:
        if stopping:
            logger.warning("received %s again, stopping now", name)
            serving.cancel()
            for task in stopping:
                task.cancel()
            return
        logger.info("received %s, stopping the zipper", name)
        task = loop.create_task(zipper.stop(f"received {name}"))
        stopping.add(task)

    installed = add_loop_signals(loop, on_signal)
    try:
        await serving
    except asyncio.CancelledError:
        if not stopping:
            raise
    finally:
        try:
            if stopping:  # let stop() finish closing connections, within a bound
                _, late = await asyncio.wait(stopping, timeout=_STOP_TIMEOUT)
                for task in late:
                    task.cancel()
                await asyncio.gather(*stopping, return_exceptions=True)
        finally:
            remove_loop_signals(loop, installed)


@click.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="FILE",
    default=None,
    help="Zipper config file (.yaml or .yml). Without it: 'zipper' on 127.0.0.1:9000, no auth.",
)
@click.option("--host", default=None, help="Listen on this host instead of the config's.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Listen on this UDP port instead of the config's (0: a free port).",
)
@click.option(
    "--monitor",
    metavar="HOST:PORT",
    default=None,
    help="Serve the monitor endpoint (/healthz, /metrics, /api/*, a live page) here; "
    "overrides the config's 'monitor'.",
)
@click.option(
    "--stats-interval",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between two INFO summary lines (connections, frames/s, drops); 0: none.",
)
def serve(
    config_path: str | None,
    host: str | None,
    port: int | None,
    monitor: str | None,
    stats_interval: float,
) -> None:
    """Run a zipper until Ctrl-C (SIGINT) or SIGTERM."""
    try:
        config = load_config(config_path) if config_path is not None else DEFAULT_CONFIG
        config = dataclasses.replace(
            config,
            host=config.host if host is None else host,
            port=config.port if port is None else port,
            monitor=config.monitor if monitor is None else monitor,
        )
    except YomoError as exc:
        raise click.ClickException(str(exc)) from exc
    if config_path is None:
        logger.warning(
            "no config file given (-c), serving the default: zipper %r on %s:%d, no auth",
            config.name,
            config.host,
            config.port,
        )
    else:
        logger.info("using config file %s", config_path)
    try:
        asyncio.run(serve_zipper(config, stats_interval=stats_interval))
    except YomoError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # the native data path's socket (the others raise YomoErrors)
        reason = exc.strerror or str(exc)
        raise click.ClickException(
            f"yomo: cannot serve on {config.host}:{config.port}: {reason}"
        ) from exc
    except KeyboardInterrupt:  # no signal handlers (Windows): Ctrl-C lands here
        logger.info("interrupted")
    except ImportError as exc:
        raise click.ClickException(f"yomo: the zipper cannot be loaded: {exc}") from exc
