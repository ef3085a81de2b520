"""Helpers for testing stream functions: a pytest plugin with an in-process zipper."""

from __future__ import annotations

__all__: list[str] = []
