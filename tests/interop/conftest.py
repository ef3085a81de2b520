"""Fixtures that run the real Go YoMo: toolchain, binaries, zipper and peer factories."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from goharness import (
    GoBins,
    GoBuildError,
    GoPeers,
    GoToolchain,
    GoZipper,
    GoZippers,
    build_go_bins,
    cache_is_warm,
    find_go_toolchain,
)

from support.zippers import AsyncZippers
from yomo.aio import Zipper
from yomo.zipper.auth import TokenAuth

__all__ = ["any_zipper", "go_bins", "go_peer", "go_toolchain", "go_zipper", "py_zipper"]

_HERE = Path(__file__).resolve().parent
# A cold cache downloads modules and compiles the yomo CLI (about 1.5 min on
# 2 cores); give the tests that may pay for it more than the default 120 s.
_COLD_BUILD_TIMEOUT = 900


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this directory `interop`; lift the timeout while the Go cache is cold."""
    mine = [item for item in items if _HERE in Path(str(item.path)).resolve().parents]
    if not mine:
        return
    cold = False
    try:
        toolchain = find_go_toolchain()
        cold = toolchain is not None and not cache_is_warm(toolchain)
    except GoBuildError:
        cold = False
    for item in mine:
        item.add_marker(pytest.mark.interop)
        if cold and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(_COLD_BUILD_TIMEOUT))


@pytest.fixture(scope="session")
def go_toolchain() -> GoToolchain:
    """The `go` on PATH; the test is skipped only when there is none."""
    toolchain = find_go_toolchain()
    if toolchain is None:
        pytest.skip("no Go toolchain found: `go` is not on PATH")
    return toolchain


@pytest.fixture(scope="session")
def go_bins(go_toolchain: GoToolchain) -> GoBins:
    """Go peers and the v1.22.3 `yomo` CLI, built once into .cache/go; a build error fails the test."""
    failure = ""
    try:
        bins = build_go_bins(go_toolchain)
    except GoBuildError as e:
        failure = str(e)
    if failure:
        pytest.fail(failure, pytrace=False)
    state = "cached" if bins.cached else "built"
    print(
        f"\ngo harness: {go_toolchain.version}; {bins.yomo_cli_version}; {state} in {bins.seconds:.1f}s",
        file=sys.stderr,
    )
    return bins


@pytest.fixture
def go_zipper(go_bins: GoBins, tmp_path: Path) -> Iterator[GoZippers]:
    """Factory: `go_zipper(name="zipper-go", token=None, mesh=None, port=None)` -> a ready GoZipper."""
    zippers = GoZippers(go_bins, tmp_path)
    yield zippers
    zippers.stop_all()


@pytest.fixture
def go_peer(go_bins: GoBins) -> Iterator[GoPeers]:
    """Factory: `go_peer.source(zipper, ...)`, `.sfn(zipper, ...)`, `.sink(zipper, ...)`, `.start(kind, ...)`."""
    peers = GoPeers(go_bins)
    yield peers
    peers.stop_all()


@pytest.fixture
async def py_zipper() -> AsyncIterator[Callable[..., Awaitable[Zipper]]]:
    """Factory: `await py_zipper(name="zipper-py", token=None, port=0, **options)` -> our started Zipper.

    It runs in the test's event loop on 127.0.0.1; TLS is self-signed and
    unverified unless `tls=` says otherwise (the runner's YOMO_TLS_* are ignored).
    """
    zippers = AsyncZippers(Zipper)

    async def make(
        name: str = "zipper-py", *, token: str | None = None, port: int = 0, **options: Any
    ) -> Zipper:
        if token is not None:
            options["authenticators"] = [TokenAuth(token)]
        return await zippers.start(name=name, port=port, **options)

    yield make
    await zippers.stop_all()


@pytest.fixture(params=["go", "py"])
async def any_zipper(
    request: pytest.FixtureRequest,
    py_zipper: Callable[..., Awaitable[Zipper]],
    go_zipper: GoZippers,
) -> Zipper | GoZipper:
    """A started zipper with its defaults, one of each in turn: Go YoMo v1.22.3's
    (test id `go`), then ours (`py`); for tests whose peers must work with either."""
    if request.param == "py":
        return await py_zipper()
    return go_zipper()
