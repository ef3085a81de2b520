"""reliability/run.py publishing: a partial run's rows replace only the same rows,
also when published later from its out/ file (``--publish-from``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from reliability import run as rel

PUBLISHED = Path(rel.__file__).parent / "results" / "latest.json"


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The committed results and doc, copied to tmp_path and used from there."""
    results = tmp_path / "results" / "latest.json"
    results.parent.mkdir()
    results.write_text(PUBLISHED.read_text())
    doc = tmp_path / "reliability.md"
    doc.write_text(f"# head\n\n{rel.BEGIN}\nold table\n{rel.END}\n\ntail text\n")
    monkeypatch.setattr(rel, "RESULTS", results)
    monkeypatch.setattr(rel, "DOC", doc)
    return json.loads(PUBLISHED.read_text())


def test_publish_from_an_out_file_replaces_only_its_rows(
    published: dict[str, Any], tmp_path: Path
) -> None:
    path = next(p for p, info in published["paths"].items() if info.get("rows"))
    rows = published["paths"][path]["rows"]
    at = next(i for i, r in enumerate(rows) if r["counts"])  # a row with frame counts
    target = rows[at]["scenario"]
    changed = copy.deepcopy(rows[at])
    changed["counts"] = {**changed["counts"], "written": 123456789}
    earlier = {  # what an older run.py wrote to out/ (no "complete" key): partial
        "stamp": "2026-01-01 00:00",
        "mode": "full, 1 repeats",
        "commit": "abc1234",
        "machine": "test",
        "command": f"bash reliability/run.sh --only {target}",
        "seconds": 1.0,
        "paths": {path: {"rows": [changed], "raw": [{"huge": True}]}},
    }
    out = tmp_path / "rel-old.json"
    out.write_text(json.dumps(earlier))

    assert rel.main(["--publish-from", str(out)]) == 0

    merged = json.loads(rel.RESULTS.read_text())
    new_rows = merged["paths"][path]["rows"]
    assert [r["scenario"] for r in new_rows] == [r["scenario"] for r in rows]
    assert new_rows[at]["counts"]["written"] == 123456789
    assert new_rows[at]["run"] == "2026-01-01 00:00, abc1234"
    assert new_rows[:at] + new_rows[at + 1 :] == rows[:at] + rows[at + 1 :]
    assert "raw" not in merged["paths"][path]
    for other, info in published["paths"].items():
        if other != path:
            assert merged["paths"][other] == info
    doc = rel.DOC.read_text()
    assert doc.startswith("# head\n") and doc.endswith("\ntail text\n")
    assert "old table" not in doc and "123456789" in doc and "[2026-01-01 00:00, abc1234]" in doc
