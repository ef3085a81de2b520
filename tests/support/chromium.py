"""A headless Chromium for page tests: Debian's ``chromium`` driven by playwright-python.

Playwright never downloads a browser here: it is pointed at the system binary
(``YOMO_TEST_CHROMIUM`` or ``/usr/bin/chromium``). ``scripts/test.sh`` installs
the Debian package when it is missing; where it cannot be had the page tests
skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

__all__ = ["CHROMIUM_ARGS", "chromium_page", "chromium_path"]

#: Flags that work as root in a container: no sandbox, no GPU, no network chatter.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The Chromium binary to drive, or ``None`` when there is none."""
    explicit = os.environ.get("YOMO_TEST_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@asynccontextmanager
async def chromium_page() -> AsyncIterator[Any]:
    """A fresh page in a headless Chromium with its own profile; skips the test without one."""
    path = chromium_path()
    if path is None:
        pytest.skip(
            "no Chromium: install Debian's 'chromium' package (scripts/test.sh does it as root) "
            "or set YOMO_TEST_CHROMIUM"
        )
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    with tempfile.TemporaryDirectory(prefix="yomo-chromium-") as profile:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=path,
                headless=True,
                args=CHROMIUM_ARGS,
            )
            try:
                page = context.pages[0] if context.pages else await context.new_page()
                yield page
            finally:
                await context.close()
