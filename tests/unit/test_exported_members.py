"""The public surface: ``yomo.__all__`` and ``yomo.aio.__all__`` are sorted, complete and
importable; every module declares ``__all__``; ``py.typed`` ships in the wheel."""

from __future__ import annotations
import __future__

import importlib
import os
import pkgutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

import yomo
import yomo.aio

ROOT = Path(__file__).resolve().parents[2]


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then CamelCase, then everything else."""
    if name.isupper() and len(name) > 1:
        return 0, name
    if name[:1].isupper():
        return 1, name
    return 2, name


def _public(module: types.ModuleType) -> list[str]:
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, (types.ModuleType, __future__._Feature))
    ]


@pytest.mark.parametrize("module", [yomo, yomo.aio], ids=lambda m: m.__name__)
def test_all_is_sorted_and_unique(module):
    names = list(module.__all__)
    assert names == sorted(names, key=_isort_key)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("module", [yomo, yomo.aio], ids=lambda m: m.__name__)
def test_every_public_name_is_exported(module):
    missing = sorted(set(_public(module)) - set(module.__all__))
    assert missing == []


@pytest.mark.parametrize("module", [yomo, yomo.aio], ids=lambda m: m.__name__)
def test_every_exported_name_is_importable(module):
    namespace: dict[str, object] = {}
    exec(f"from {module.__name__} import *", namespace)
    for name in module.__all__:
        assert getattr(module, name) is namespace[name]


def test_front_doors_match():
    """The sync and async front doors offer the same client names."""
    for name in ("Source", "StreamFunction", "Zipper"):
        assert name in yomo.__all__
        assert name in yomo.aio.__all__
    assert yomo.Source is not yomo.aio.Source
    shared = set(yomo.__all__) & set(yomo.aio.__all__) - {"Source", "StreamFunction", "Zipper"}
    for name in shared:
        assert getattr(yomo, name) is getattr(yomo.aio, name), name


#: Modules whose owners still have to add ``__all__`` (remove names as they are fixed).
KNOWN_WITHOUT_ALL: set[str] = set()


def _modules() -> list[str]:
    names = ["yomo"]
    for info in pkgutil.walk_packages(yomo.__path__, "yomo."):
        if info.name != "yomo.__main__":  # importing it runs the command
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_every_module_declares_all(name):
    if name in KNOWN_WITHOUT_ALL:
        pytest.xfail(f"{name} has no __all__ yet")
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} has no docstring"
    assert isinstance(getattr(module, "__all__", None), (list, tuple)), f"{name} has no __all__"
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.__all__ names missing {exported!r}"


def test_py_typed_is_in_the_package():
    assert (Path(yomo.__file__).parent / "py.typed").is_file()


def test_py_typed_ships_in_the_wheel(tmp_path):
    # the pure-Python wheel (YOMO_NATIVE=off: no Rust build here); the native module's
    # stub ships beside it
    env = {**os.environ, "YOMO_NATIVE": "off"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        env=env,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("pyyomo-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert "yomo/py.typed" in names
    assert "yomo/_native.pyi" in names
    assert "yomo/__init__.py" in names
    assert "yomo/aio.py" in names
