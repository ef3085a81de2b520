"""``yomo stats [ADDR]``: read a zipper's monitor endpoint and print it as tables.

ADDR is the monitor's ``HOST:PORT`` (``yomo serve --monitor``) or its URL.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import click

__all__ = ["fetch_monitor", "render", "stats"]

DEFAULT_MONITOR = "127.0.0.1:8222"


def _base_url(addr: str) -> str:
    addr = addr.strip().rstrip("/")
    return addr if addr.startswith(("http://", "https://")) else f"http://{addr}"


def fetch_monitor(addr: str, timeout: float = 5.0) -> dict[str, Any]:
    """``/api/stats``, ``/api/connections`` and ``/api/history`` of the monitor at ``addr``.

    Raises:
        click.ClickException: unreachable, an HTTP error, or not a yomo monitor.
    """
    base = _base_url(addr)
    out: dict[str, Any] = {}
    for key in ("stats", "connections", "history"):
        url = f"{base}/api/{key}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                out[key] = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise click.ClickException(
                f"yomo: {url}: HTTP {exc.code} {exc.reason} (is this a yomo monitor endpoint?)"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise click.ClickException(
                f"yomo: cannot reach the monitor at {base}: {reason} "
                f"(is `yomo serve --monitor {base.split('://', 1)[1]}` running?)"
            ) from None
        except ValueError:
            raise click.ClickException(f"yomo: {url} did not answer JSON") from None
    return out


def _age(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _rate(value: float) -> str:
    return f"{value:.1f}"


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    if not rows:
        return [title, "  (none)"]
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [title]
    for row in cells:
        lines.append(
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        )
    return lines


def render(data: dict[str, Any], now: float | None = None) -> str:
    """The tables ``yomo stats`` prints for what :func:`fetch_monitor` returned."""
    now = time.time() if now is None else now
    s = data["stats"]
    points = data["history"].get("points") or []
    last = points[-1] if points else {}
    rates = data["history"].get("tag_rates", {})
    by_type = ", ".join(f"{kind} {n}" for kind, n in sorted(s["connections"].items()) if n)
    total = sum(s["connections"].values())
    lines = [
        f"zipper {s['name']!r} {s['state']}, up {_age(s['uptime'])} (yomo {s.get('version', '?')})",
        f"connections {total}{f' ({by_type})' if by_type else ''} · handshakes {s['handshakes']}"
        f" · rejections {s['rejections']} · protocol errors {s['protocol_errors']}",
        f"frames in {s['frames_in']} ({_rate(last.get('frames_in', 0))}/s)"
        f" · out {s['frames_out']} ({_rate(last.get('frames_out', 0))}/s)"
        f" · dropped {s['drops']} · unobserved {s['unobserved']}",
        "",
    ]
    conns = [
        (
            c["number"],
            c["client_type"],
            c["name"],
            ",".join(c["observed_tags"]) or "-",
            c["remote_address"],
            _age(now - c["connected_at"]),
            c["frames_in"],
            c["frames_out"],
            c["dropped"],
            c["send_backlog"],
        )
        for c in data["connections"]
    ]
    lines += _table(
        "CONNECTIONS",
        ("#", "TYPE", "NAME", "OBSERVES", "FROM", "AGE", "IN", "OUT", "DROPPED", "BACKLOG"),
        conns,
    )
    tags = list(s["tags"].items())
    if any(s["other_tags"].values()):
        tags.append(("other", s["other_tags"]))
    tag_rows = [
        (
            tag,
            _rate(rates.get(tag, {}).get("frames_in", 0)),
            _rate(rates.get(tag, {}).get("frames_out", 0)),
            c["frames_in"],
            c["frames_out"],
            c["bytes_in"],
            c["unobserved"],
            c["dropped"],
        )
        for tag, c in tags
    ]
    lines.append("")
    lines += _table(
        "TAGS",
        ("TAG", "IN/S", "OUT/S", "FRAMES IN", "FRAMES OUT", "BYTES IN", "UNOBSERVED", "DROPPED"),
        tag_rows,
    )
    mesh = s.get("mesh")
    if mesh:
        mesh_rows = [
            (
                peer,
                link["address"],
                link["state"],
                link["forwarded"],
                link["dropped"],
                link["queued_frames"],
                link["last_error"] or "-",
            )
            for peer, link in sorted(mesh.items())
        ]
        lines.append("")
        lines += _table(
            "MESH",
            ("PEER", "ADDRESS", "STATE", "FORWARDED", "DROPPED", "QUEUED", "LAST ERROR"),
            mesh_rows,
        )
    return "\n".join(lines)


@click.command()
@click.argument("addr", default=DEFAULT_MONITOR, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the monitor's JSON instead.")
def stats(addr: str, as_json: bool) -> None:
    """Print a zipper's state from its monitor endpoint at ADDR (default 127.0.0.1:8222).

    \b
    yomo serve -c zipper.yaml --monitor 127.0.0.1:8222   # elsewhere
    yomo stats 127.0.0.1:8222
    """
    data = fetch_monitor(addr)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(render(data))
