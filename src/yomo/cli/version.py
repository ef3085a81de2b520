"""``yomo version``: what is installed, for bug reports (Go: cli/version.go)."""

from __future__ import annotations

import importlib.metadata
import platform

import click

from yomo._version import SPEC_VERSION, __version__

__all__ = ["quic_backend", "version", "version_lines"]

_QUIC_LIBRARIES = ("qh3", "aioquic")


def quic_backend() -> str:
    """Name and version of the QUIC library in use.

    Asks ``yomo.transport.backend_info()``; if no QUIC library loads (a broken
    install, the case a bug report is about), lists the QUIC libraries installed.
    """
    try:
        from yomo.transport import backend_info

        return backend_info()
    except Exception:  # any failure here must not break `yomo version`
        pass
    found = []
    for name in _QUIC_LIBRARIES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    if not found:
        return "none installed (pip install qh3)"
    return "installed: " + ", ".join(found)


def version_lines() -> list[tuple[str, str]]:
    """The (label, value) pairs ``yomo version`` prints."""
    python = f"{platform.python_version()} ({platform.python_implementation()})"
    return [
        ("yomo", __version__),
        ("spec", SPEC_VERSION),
        ("quic", quic_backend()),
        ("python", python),
    ]


@click.command()
def version() -> None:
    """Print YoMo, wire protocol, QUIC library and Python versions."""
    lines = version_lines()
    width = max(len(label) for label, _ in lines) + 1
    for label, value in lines:
        click.echo(f"{label + ':':<{width}} {value}")
