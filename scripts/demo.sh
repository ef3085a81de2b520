#!/usr/bin/env bash
# The demo: its own venv (.venv-demo), the project installed into it, then a zipper,
# a source, an uppercase stream function and a sink on loopback for a few seconds.
# Usage: bash scripts/demo.sh [seconds]      (PYTHON=python3.12 to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${YOMO_DEMO_VENV:-.venv-demo}
SECONDS_TO_RUN=${1:-4}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "demo: needs Python 3.10 or newer (found: $("$PY" --version 2>&1 || echo none)); set PYTHON=..." >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PY" -m venv "$VENV"
fi
echo "== installing yomo into $VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# builds the native data path (Rust, native/) when cargo is present; its build cache
# is the ignored .cache/cargo-target
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/.cache/cargo-target} "$VENV/bin/python" -m pip install -q .
"$VENV/bin/yomo" version
echo "== basic pipeline for ${SECONDS_TO_RUN} s: source -> uppercase (0x33 -> 0x34) -> sink"
exec "$VENV/bin/python" examples/basic_pipeline.py --seconds "$SECONDS_TO_RUN" --rate 5
