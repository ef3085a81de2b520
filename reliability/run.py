"""The reliability suite: ``bash reliability/run.sh [--short] [--path python|native|all]``.

Runs every scenario of ``scenarios.py`` against our zipper in its own process,
with the normal source -> function pair beside each probe; 3 repeats in the
full run, 1 in ``--short`` (the version ``scripts/test.sh`` runs). Writes
``reliability/out/<stamp>.json``; the full run (or ``--publish``) also writes
``reliability/results/latest.json`` and the generated part of ``docs/reliability.md``;
a partial run (``--only``, one ``--path``) published replaces only its own rows there.
Exits 1 when a gating check fails. See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from reliability.harness import ROOT, scenario_processes  # noqa: E402
from reliability.scenarios import SCENARIOS, Ctx  # noqa: E402

__all__ = ["main"]

OUT = HERE / "out"
RESULTS = HERE / "results" / "latest.json"
DOC = ROOT / "docs" / "reliability.md"
BEGIN = "<!-- reliability/run.py: generated section begin -->"
END = "<!-- reliability/run.py: generated section end -->"

#: Environment that selects each transport path for every process of a run.
PATHS: dict[str, dict[str, str]] = {
    "python": {"YOMO_QUIC_BACKEND": "qh3"},
    "native": {"YOMO_QUIC_BACKEND": "native"},
}


def path_available(path: str) -> str | None:
    """None when ``path`` can run here, else why not."""
    env = {**os.environ, **PATHS[path]}
    check = "from yomo.transport import backend_info; print(backend_info())"
    proc = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["unavailable"])[-1][:200]
    return None


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the same scenario across repeats -> one row: counts summed, times min/median/max."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        agg = out.get(row["scenario"])
        if agg is None:
            agg = out[row["scenario"]] = {
                **{k: row[k] for k in ("scenario", "load", "faults", "path")},
                "repeats": 0,
                "counts": None,
                "times": {},
                "rss_kib": 0,
                "checks": {},
                "notes": [],
            }
        agg["repeats"] += 1
        if row["counts"] is not None:
            c = agg["counts"] or {}
            for key in (
                "written",
                "delivered",
                "lost",
                "duplicated",
                "duplicated_same_connection",
                "reordered",
                "failed_writes",
                "reported_lost",
            ):
                c[key] = c.get(key, 0) + int(row["counts"].get(key, 0))
            c.setdefault("lost_per_run", []).append(row["counts"].get("lost"))
            agg["counts"] = c
        for label, value in row["times"].items():
            agg["times"].setdefault(label, []).append(value)
        agg["rss_kib"] = max(agg["rss_kib"], row["rss_kib"] or 0)
        for check in row["checks"]:
            prev = agg["checks"].get(check["name"])
            ok = check["ok"] and (prev is None or prev["ok"])
            agg["checks"][check["name"]] = {"ok": ok, "gate": check["gate"]}
        if row["notes"]:
            agg["notes"].append(row["notes"])
    for agg in out.values():
        agg["times"] = {
            label: _spread([v for v in values if v is not None], len(values))
            for label, values in agg["times"].items()
        }
    return list(out.values())


def _spread(values: list[float], n: int) -> dict[str, Any]:
    if not values:
        return {"min": None, "median": None, "max": None, "missing": n}
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "missing": n - len(values),
    }


def _fmt_time(spread: dict[str, Any]) -> str:
    if spread["median"] is None:
        return "never"
    parts = [spread["min"], spread["median"], spread["max"]]
    text = "/".join(f"{v:.2f}" for v in parts) if parts[0] != parts[2] else f"{parts[1]:.2f}"
    return text + (f" ({spread['missing']} never)" if spread["missing"] else "")


def _run_label(row: dict[str, Any], run: dict[str, Any]) -> str:
    """Where a row merged in from another run (``--publish --only ...``) came from."""
    origin = row.get("run")
    return f" [{origin}]" if origin and origin != f"{run['stamp']}, {run['commit']}" else ""


def merge_published(run: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """A partial run's rows in place of the same rows of the last published results.

    Rows are matched by path and scenario name; every merged row keeps where it came
    from (``run``: stamp and commit), shown in the table next to its name.
    """
    if previous is None:
        return run
    label = f"{run['stamp']}, {run['commit']}"
    merged = {**previous, "paths": {p: dict(i) for p, i in previous["paths"].items()}}
    for path, info in run["paths"].items():
        if info.get("skipped"):
            continue
        new = {r["scenario"]: {**r, "run": label} for r in info["rows"]}
        old = merged["paths"].get(path, {}).get("rows", [])
        rows = [new.pop(r["scenario"]) if r["scenario"] in new else r for r in old]
        merged["paths"][path] = {"rows": rows + list(new.values())}
    merged["command"] = f"{previous.get('command', '')}; merged: {run['command']} ({label})"
    return merged


def render(run: dict[str, Any]) -> str:
    """The generated part of docs/reliability.md."""
    lines = [
        BEGIN,
        "",
        f"Run {run['stamp']} ({run['mode']}), commit `{run['commit']}`, {run['machine']}; "
        f"{run['seconds']:.0f} s. Command: `{run['command']}`.",
        "",
    ]
    for path, info in run["paths"].items():
        lines.append(f"### Path: {path}")
        lines.append("")
        if info.get("skipped"):
            lines += [f"Not run: {info['skipped']}", ""]
            continue
        lines += [
            "| scenario | load | faults | written | delivered | lost | dup (same conn.) | reord | times, s (min/median/max) | zipper RSS MiB | checks |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in info["rows"]:
            c = row["counts"]
            nums = (
                [
                    str(c["written"]),
                    str(c["delivered"]),
                    str(c["lost"]),
                    f"{c['duplicated']} ({c.get('duplicated_same_connection', 0)})",
                    str(c["reordered"]),
                ]
                if c
                else ["-"] * 5
            )
            times = "; ".join(f"{k}: {_fmt_time(v)}" for k, v in row["times"].items()) or "-"
            checks = ", ".join(
                ("ok " if v["ok"] else ("FAIL " if v["gate"] else "not met: ")) + k
                for k, v in row["checks"].items()
            )
            rss = f"{row['rss_kib'] / 1024:.0f}" if row["rss_kib"] else "-"
            lines.append(
                f"| {row['scenario']} ({row['repeats']}x){_run_label(row, run)} | {row['load']} | {row['faults']} | "
                + " | ".join(nums)
                + f" | {times} | {rss} | {checks} |"
            )
        lines.append("")
        notes = [(r["scenario"], n) for r in info["rows"] for n in r["notes"][:1]]
        if notes:
            lines += ["Notes (first repeat):", ""]
            lines += [f"- {s}: {n}" for s, n in notes]
            lines.append("")
    lines.append(END)
    return "\n".join(lines)


def publish_run(run: dict[str, Any], *, partial: bool) -> None:
    """Write results/latest.json and the doc's table from ``run`` (raw rows left out);
    a partial run (``--only``, one ``--path``) replaces only its own rows."""
    RESULTS.parent.mkdir(exist_ok=True)
    slim = {
        **run,
        "paths": {p: {k: v for k, v in i.items() if k != "raw"} for p, i in run["paths"].items()},
    }
    if partial:
        previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else None
        slim = merge_published(slim, previous)
    RESULTS.write_text(json.dumps(slim, indent=1, default=str))
    write_doc(slim)


def write_doc(run: dict[str, Any]) -> None:
    text = DOC.read_text() if DOC.is_file() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + render(run) + tail)


def run_path(path: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    why = path_available(path)
    if why is not None:
        return {"skipped": why, "rows": []}
    rows: list[dict[str, Any]] = []
    selected = [s for s in SCENARIOS if (not args.only or s.name in args.only)]
    if args.short:
        selected = [s for s in selected if s.short]
    for scenario in selected:
        repeats = args.repeats if scenario.repeats else 1
        for i in range(repeats):
            t0 = time.time()
            print(f"== {path}: {scenario.name} ({i + 1}/{repeats})", flush=True)
            with scenario_processes(work / path / f"{scenario.name}-{i}", PATHS[path]) as procs:
                ctx = Ctx(procs, args.short, path, args.soak, args.fuzz_runs)
                try:
                    got = scenario.run(ctx)
                except Exception as exc:
                    traceback.print_exc()
                    got = [
                        {
                            "scenario": scenario.name,
                            "load": "-",
                            "faults": "-",
                            "counts": None,
                            "times": {},
                            "rss_kib": 0,
                            "checks": [
                                {
                                    "name": f"ran ({type(exc).__name__}: {exc})"[:160],
                                    "ok": False,
                                    "gate": True,
                                }
                            ],
                            "notes": "",
                        }
                    ]
            for row in got:
                row["path"] = path
                bad = [c["name"] for c in row["checks"] if not c["ok"]]
                print(
                    f"   {row['scenario']}: {'ok' if not bad else 'not ok: ' + ', '.join(bad)}"
                    f" ({time.time() - t0:.0f} s)",
                    flush=True,
                )
            rows.extend(got)
    return {"rows": aggregate(rows), "raw": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--short", action="store_true", help="the few-minute version (scripts/test.sh)"
    )
    parser.add_argument("--path", default="all", choices=["python", "native", "all"])
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (short: 1)")
    parser.add_argument(
        "--soak", type=float, default=None, help="soak seconds (default 3600; short 20)"
    )
    parser.add_argument(
        "--fuzz-runs", type=int, default=None, help="default 1,000,000 (short 20,000)"
    )
    parser.add_argument("--only", nargs="*", default=[], help="scenario names")
    parser.add_argument(
        "--workdir", default=None, help="keep every process's log here (default: a temp dir)"
    )
    parser.add_argument(
        "--publish", action="store_true", help="write results/latest.json and the doc"
    )
    parser.add_argument(
        "--publish-from",
        metavar="OUT_JSON",
        default=None,
        help="publish an earlier run's out/rel-*.json (its rows replace the same rows) and exit",
    )
    args = parser.parse_args(argv)
    if args.publish_from:
        earlier = json.loads(Path(args.publish_from).read_text())
        publish_run(earlier, partial=not earlier.get("complete", False))
        print(f"reliability: published {args.publish_from} into {RESULTS}")
        return 0
    args.repeats = args.repeats or (1 if args.short else 3)
    args.soak = args.soak if args.soak is not None else (20.0 if args.short else 3600.0)
    args.fuzz_runs = args.fuzz_runs or (20_000 if args.short else 1_000_000)
    paths = ["python", "native"] if args.path == "all" else [args.path]
    started = time.time()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    run: dict[str, Any] = {
        "stamp": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "mode": "short" if args.short else f"full, {args.repeats} repeats",
        "commit": commit,
        "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}",
        "command": "bash reliability/run.sh "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "paths": {},
    }
    with tempfile.TemporaryDirectory(prefix="yomo-rel-") as tmp:
        work = Path(args.workdir).resolve() if args.workdir else Path(tmp)
        for path in paths:
            run["paths"][path] = run_path(path, args, work)
    run["seconds"] = time.time() - started
    run["complete"] = not args.only and args.path == "all"
    OUT.mkdir(exist_ok=True)
    out = OUT / f"rel-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(run, indent=1, default=str))
    if args.publish or (not args.short and not args.only):
        publish_run(run, partial=not run["complete"])
    failed = [
        f"{p}: {row['scenario']}: {name}"
        for p, info in run["paths"].items()
        for row in info["rows"]
        for name, c in row["checks"].items()
        if c["gate"] and not c["ok"]
    ]
    goals = sum(
        1
        for info in run["paths"].values()
        for row in info["rows"]
        for c in row["checks"].values()
        if not c["gate"] and not c["ok"]
    )
    print(f"reliability: {out} ({run['seconds']:.0f} s); {goals} goal check(s) not met")
    for line in failed:
        print(f"FAILED {line}")
    print(f"reliability: {'FAILED' if failed else 'passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
