"""Raw-wire bad input: one misbehaving QUIC connection per case, written by hand.

Each case dials the zipper with the Python transport (the attacker's side does
not change with the zipper's data path), misbehaves, and returns what happened
to its connection: closed or not, by whom, with what reason, after how long.
The scenario runs them one after another beside the normal pair and checks that
each bad connection is closed with a reason, within a bound, and that the pair
loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from yomo._version import SPEC_VERSION
from yomo.client.core import parse_address
from yomo.transport import FrameConnection, QuicSettings, TlsConfig, dial
from yomo.wire import (
    ClientType,
    HandshakeFrame,
    encode_data_frame,
    encode_length,
)

__all__ = ["ATTACKER_BACKEND", "CASES", "BadCase", "brute_force", "run_case"]

#: The attacker's side always uses the pure-Python transport: it writes below the frame
#: API (half frames, FIN), whatever data path the zipper runs.
ATTACKER_BACKEND = "qh3"
#: Seconds a bad connection may live before the case counts it as never closed.
CLOSE_BOUND = 12.0


def _hello(name: str = "bad", **kw: Any) -> HandshakeFrame:
    fields: dict[str, Any] = {
        "name": name,
        "id": "bad-0",
        "client_type": ClientType.SOURCE,
        "version": SPEC_VERSION,
    }
    fields.update(kw)
    return HandshakeFrame(**fields)


def _send_raw(conn: FrameConnection, data: bytes, *, fin: bool = False) -> None:
    """Bytes on the connection's stream, optionally ending it (FIN): below the frame API."""
    protocol = conn._protocol
    if conn._stream_id is None:
        conn._stream_id = protocol._quic.get_next_available_stream_id()
    protocol._quic.send_stream_data(conn._stream_id, data, end_stream=fin)
    protocol.transmit()


async def _handshake(conn: FrameConnection, ctx: dict[str, Any], **kw: Any) -> Any:
    if ctx.get("credential"):
        name, _, payload = ctx["credential"].partition(":")
        kw.setdefault("auth_name", name)
        kw.setdefault("auth_payload", payload)
    conn.send_nowait(_hello(**kw))
    return await asyncio.wait_for(conn.read_frame(), 5.0)


async def _garbage(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    conn.send_nowait(b"GET / HTTP/1.1\r\nHost: zipper\r\n\r\n")


async def _oversize(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    conn.send_nowait(b"\xbf" + encode_length(1 << 30) + b"\x01\x01\x01")


async def _unknown_frame(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    conn.send_nowait(b"\xff" * 64)


async def _wrong_version(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    await _handshake(conn, ctx, version="1999-01-01")


async def _wrong_token(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    await _handshake(conn, {}, auth_name="token", auth_payload=ctx["wrong_token"])


async def _silent(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    return  # QUIC handshake done, then nothing at all


async def _half_handshake_fin(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    data = _hello().encode()
    _send_raw(conn, data[: len(data) // 2], fin=True)  # then only the keep-alive pings


async def _truncated_data_fin(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    await _handshake(conn, ctx)
    data = encode_data_frame(0x10, b"", b"x" * 100)
    _send_raw(conn, data[:40], fin=True)


async def _huge_name(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    await _handshake(conn, ctx, name="N" * (1 << 20))
    conn.close("probe done")


async def _many_tags(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    await _handshake(
        conn, ctx, client_type=ClientType.STREAM_FUNCTION, observe_data_tags=tuple(range(100_000))
    )
    conn.close("probe done")


async def _reserved_tag(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    await _handshake(conn, ctx)
    conn.send_nowait(encode_data_frame(0xF001, b"", b"system?"))


async def _bad_metadata(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    await _handshake(conn, ctx)
    conn.send_nowait(encode_data_frame(0x10, b"\xc1\xc1not msgpack", b"x"))


async def _second_handshake(conn: FrameConnection, ctx: dict[str, Any]) -> None:
    await _handshake(conn, ctx)
    conn.send_nowait(_hello())


@dataclass(frozen=True)
class BadCase:
    """One kind of bad input and what the zipper must do with it."""

    name: str
    what: str
    act: Callable[[FrameConnection, dict[str, Any]], Awaitable[None]]
    expect_close: bool = True
    """False: a valid (if rude) handshake that the zipper may keep; checked for log size."""


CASES: tuple[BadCase, ...] = (
    BadCase("garbage", "HTTP request bytes instead of a frame", _garbage),
    BadCase("oversize", "a frame header claiming 1 GiB", _oversize),
    BadCase("unknown-frame", "unknown frame type 0x7f", _unknown_frame),
    BadCase("wrong-version", "HandshakeFrame with version 1999-01-01", _wrong_version),
    BadCase("wrong-token", "HandshakeFrame with a wrong token", _wrong_token),
    BadCase("silent", "QUIC connection that never sends a byte", _silent),
    BadCase(
        "half-handshake-fin", "half a HandshakeFrame, FIN, then only PINGs", _half_handshake_fin
    ),
    BadCase("truncated-data-fin", "handshake, then half a DataFrame and FIN", _truncated_data_fin),
    BadCase("huge-name", "client name of 1 MiB (log amplification)", _huge_name, False),
    BadCase("many-tags", "handshake observing 100,000 tags", _many_tags, False),
    BadCase("reserved-tag", "DataFrame on reserved tag 0xF001", _reserved_tag),
    BadCase("bad-metadata", "DataFrame whose metadata is not MessagePack", _bad_metadata),
    BadCase("second-handshake", "a HandshakeFrame after the handshake", _second_handshake),
)


async def run_case(case: BadCase, addr: str, ctx: dict[str, Any]) -> dict[str, Any]:
    """Run one case; report whether and how fast the zipper closed the connection."""
    host, port = parse_address(addr)
    started = time.time()
    # an attacker keeps the connection alive with a PING every second
    settings = QuicSettings(keep_alive=1.0, backend=ATTACKER_BACKEND)
    conn = await dial(host, port, tls=TlsConfig(), settings=settings)
    error = ""
    try:
        await case.act(conn, ctx)
    except Exception as exc:  # the zipper may close while we still write: that is fine
        error = f"{type(exc).__name__}: {exc}"[:200]
    closed = True
    if case.expect_close:
        try:
            await asyncio.wait_for(conn.wait_closed(), CLOSE_BOUND)
        except asyncio.TimeoutError:
            closed = False
    result = {
        "case": case.name,
        "what": case.what,
        "closed": conn.closed,
        "closed_by_zipper": conn.closed and conn.closed_by_peer and not _timed_out(conn),
        "reason": (conn.close_reason or "")[:200],
        "close_s": round(time.time() - started, 3) if closed else None,
        "error": error,
    }
    with contextlib.suppress(Exception):
        await conn.aclose("probe done")
    return result


def _timed_out(conn: FrameConnection) -> bool:
    return "idle timeout" in (conn.close_reason or "").lower()


async def brute_force(addr: str, wrong_token: str, seconds: float) -> dict[str, Any]:
    """Wrong tokens from one address, back to back for ``seconds``: how many were checked."""
    host, port = parse_address(addr)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    answered = attempts = checked = 0
    while loop.time() < end:
        attempts += 1
        try:
            settings = QuicSettings(backend=ATTACKER_BACKEND)
            conn = await dial(host, port, tls=TlsConfig(), settings=settings)
        except Exception:
            continue
        try:
            conn.send_nowait(_hello(auth_name="token", auth_payload=f"{wrong_token}{attempts}"))
            reply = await asyncio.wait_for(conn.read_frame(), max(0.05, end - loop.time()))
            answered += 1
            if "invalid token" in getattr(reply, "message", ""):
                checked += 1
        except Exception:
            pass
        finally:
            with contextlib.suppress(Exception):
                await conn.aclose("probe done")
    return {
        "attempts": attempts,
        "answered": answered,
        "checked": checked,
        "checked_per_s": round(checked / seconds, 1),
    }
