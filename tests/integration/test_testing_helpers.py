"""yomo.testing, the helpers users test their functions with (loaded as the pytest plugin ``yomo``)."""

from __future__ import annotations

import pytest

import yomo
from yomo.testing import acall_handler, arun_handler, call_handler, run_handler


def upper(ctx: yomo.Context) -> None:
    ctx.write(0x34, ctx.data.upper())


async def aupper(ctx: yomo.AsyncContext) -> None:
    await ctx.write(0x34, ctx.data.upper())


def fan_out(ctx: yomo.Context) -> tuple[int, bytes]:
    ctx.write(0x35, b"first:" + ctx.data)
    ctx.write_json(0x36, {"len": len(ctx.data)})
    return 0x37, b"returned:" + ctx.data


def failing(ctx: yomo.Context) -> None:
    raise ValueError(f"cannot handle {ctx.data!r}")


def test_the_plugin_is_registered(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("yomo")


def test_call_handler_sync_async_and_return_value() -> None:
    assert call_handler(upper, 0x33, b"abc") == [(0x34, b"ABC")]
    assert call_handler(aupper, 0x33, b"abc") == [(0x34, b"ABC")]
    assert call_handler(fan_out, 0x33, b"x") == [
        (0x35, b"first:x"),
        (0x36, b'{"len":1}'),
        (0x37, b"returned:x"),
    ]


def test_call_handler_gives_metadata_and_raises() -> None:
    seen = {}

    def look(ctx: yomo.Context) -> None:
        seen.update(ctx.metadata)

    assert call_handler(look, 1, b"", metadata={"user": "alice"}) == []
    assert seen["user"] == "alice" and seen["yomo-tid"] and seen["yomo-source-id"]
    with pytest.raises(ValueError, match="cannot handle"):
        call_handler(failing, 1, b"x")


async def test_acall_handler_in_an_event_loop() -> None:
    assert await acall_handler(aupper, 0x33, b"q") == [(0x34, b"Q")]
    assert await acall_handler(upper, 0x33, b"q") == [(0x34, b"Q")]
    with pytest.raises(RuntimeError, match="acall_handler"):
        call_handler(aupper, 0x33, b"q")


def test_run_handler_through_the_fixture_zipper(yomo_zipper: yomo.Zipper) -> None:
    assert yomo_zipper.address[0] == "127.0.0.1"
    assert run_handler(upper, 0x33, [b"a", b"b", b"c"], zipper=yomo_zipper) == [
        (0x34, b"A"),
        (0x34, b"B"),
        (0x34, b"C"),
    ]
    assert run_handler(fan_out, 0x33, b"x", zipper=yomo_zipper) == call_handler(fan_out, 0x33, b"x")
    # The frames really went through the zipper.
    tags = yomo_zipper.stats()["tags"]
    assert tags[0x33]["frames_in"] >= 4 and tags[0x37]["frames_in"] >= 1


def test_run_handler_observes_what_it_is_told(yomo_zipper: yomo.Zipper) -> None:
    assert run_handler(upper, 0x40, b"x", observe=[0x41], zipper=yomo_zipper) == []
    assert run_handler(upper, 0x40, b"x", observe=[0x41, 0x40], zipper=yomo_zipper) == [
        (0x34, b"X")
    ]


def test_run_handler_raises_the_handlers_error(yomo_zipper: yomo.Zipper) -> None:
    with pytest.raises(ValueError, match="cannot handle b'x'"):
        run_handler(failing, 0x33, b"x", zipper=yomo_zipper)


def test_run_handler_starts_its_own_zipper() -> None:
    assert run_handler(aupper, 0x33, b"own") == [(0x34, b"OWN")]


async def test_arun_handler_with_the_sync_fixture(yomo_zipper: yomo.Zipper) -> None:
    assert await arun_handler(aupper, 0x33, b"z", zipper=yomo_zipper) == [(0x34, b"Z")]
