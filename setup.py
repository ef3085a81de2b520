"""Build the optional native data path (``yomo._native``, Rust, in ``native/``).

Everything else about the package is in pyproject.toml. ``YOMO_NATIVE`` chooses:

* ``auto`` (default): build it when a Rust toolchain works, else install the
  pure-Python package with a warning (the qh3/aioquic path is then used);
* ``required``: a failed native build fails the install (CI, wheels);
* ``off``: do not build it.

The module uses Python's stable ABI (abi3, 3.10+): one wheel per platform.
"""

from __future__ import annotations

import os

from setuptools import setup
from setuptools_rust import Binding, RustExtension

mode = os.environ.get("YOMO_NATIVE", "auto").strip().lower()
if mode not in ("auto", "required", "off"):
    raise SystemExit(f"yomo: YOMO_NATIVE must be auto, required or off, got {mode!r}")

extensions = []
if mode != "off":
    extensions.append(
        RustExtension(
            "yomo._native",
            path="native/Cargo.toml",
            binding=Binding.PyO3,
            features=["extension-module"],
            py_limited_api=True,
            # release even for editable installs (setuptools-rust builds those in debug
            # by default, which is several times slower on the data path)
            debug=False,
            optional=mode == "auto",
        )
    )

setup(
    rust_extensions=extensions,
    zip_safe=False,
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
