"""The ``yomo`` command."""

from __future__ import annotations


def main() -> None:
    """Entry point of the ``yomo`` console script."""
    raise SystemExit("yomo: the command line is not built yet")
