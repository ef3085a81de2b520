"""The docs name every public name, and every doc page the README links to exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import yomo
import yomo.aio
import yomo.testing

ROOT = Path(__file__).resolve().parents[2]
API = (ROOT / "docs" / "api.md").read_text()


@pytest.mark.parametrize(
    "name",
    sorted(
        {n for n in yomo.__all__ if n != "__version__"}
        | set(yomo.aio.__all__)
        | set(yomo.testing.__all__)
    ),
)
def test_every_public_name_is_in_api_md(name: str) -> None:
    assert re.search(rf"\b{re.escape(name)}\b", API), f"docs/api.md does not mention {name}"


def test_version_is_in_api_md() -> None:
    assert "`__version__`" in API


@pytest.mark.parametrize(
    "page", ["README.md", "docs/quickstart.md", "docs/api.md", "docs/cli.md", "examples/README.md"]
)
def test_relative_links_point_to_files(page: str) -> None:
    path = ROOT / page
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
        assert (path.parent / target).exists(), f"{page} links to missing {target}"
