#!/usr/bin/env bash
# The whole test suite from scratch: own venv, lint, type check, tests.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${YOMO_TEST_VENV:-.venv-test}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# The native data path (native/, Rust) is built by the install. Cargo's build cache
# lives in the ignored .cache/cargo-target, shared by every venv of this checkout.
# With cargo present the build must succeed (YOMO_NATIVE=required); without it the
# pure-Python package is tested and the native tests say why they skip.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/.cache/cargo-target}
if command -v cargo >/dev/null 2>&1; then
  export YOMO_NATIVE=${YOMO_NATIVE:-required}
else
  echo "== no cargo on PATH: testing without the native data path"
  export YOMO_NATIVE=${YOMO_NATIVE:-auto}
fi
echo "== installing (native build: YOMO_NATIVE=$YOMO_NATIVE, cache $CARGO_TARGET_DIR)"
"$VENV/bin/python" -m pip install -q -e '.[dev]'
# The page tests drive Debian's chromium (never a downloaded browser): install it when
# missing and we are root with apt; otherwise those tests skip and say why.
if [ -z "${YOMO_TEST_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (Debian package) for the page tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "== chromium could not be installed: the page tests will skip"
  else
    echo "== no chromium and no root apt-get: the page tests will skip"
  fi
fi
# The native module is tested through Python (tests/unit/test_native.py and every
# integration test on the native path); `cargo test --lib` in native/ runs its own
# small unit tests and is left out here to keep CI's build to one.
echo "== ruff"
lint_dirs=()
for d in src tests bench examples fuzz reliability; do [ -d "$d" ] && lint_dirs+=("$d"); done
"$VENV/bin/ruff" check "${lint_dirs[@]}"
"$VENV/bin/ruff" format --check src tests
echo "== mypy (public API, strict)"
"$VENV/bin/mypy"
echo "== pytest"
"$VENV/bin/python" -m pytest -ra "$@"
# The pure-Python data path stays complete and selectable: the integration suite's
# core again with YOMO_QUIC_BACKEND=qh3 (zipper and clients on qh3/aioquic).
if "$VENV/bin/python" -c 'from yomo.transport.native import available; raise SystemExit(not available())'; then
  echo "== pytest, pure-Python data path (YOMO_QUIC_BACKEND=qh3)"
  YOMO_QUIC_BACKEND=qh3 "$VENV/bin/python" -m pytest -ra -q \
    tests/integration/test_zipper_routing.py tests/integration/test_zipper_handshake.py \
    tests/integration/test_zipper_bad_input.py tests/integration/test_zipper_backpressure.py \
    tests/integration/test_client_async.py tests/integration/test_client_sync.py \
    tests/integration/test_tls.py tests/integration/test_reconnect.py tests/integration/test_mesh.py
fi
echo "== reliability suite, short version (reliability/README.md; the full run: bash reliability/run.sh)"
PYTHON="$VENV/bin/python" bash reliability/run.sh --short
# The optional aiopquic backend has wheels for Python 3.12+ only: its tests and the
# wire/unit tests again under 3.12, in a venv of its own, when a python3.12 runs here.
py312=${PYTHON312:-}
if [ -z "$py312" ] && command -v python3.12 >/dev/null 2>&1; then
  if python3.12 -c '' >/dev/null 2>&1; then
    py312=python3.12
  elif command -v pyenv >/dev/null 2>&1; then  # a pyenv shim whose version is not selected
    v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.|$)' | tail -n 1 || true)
    [ -n "$v" ] && py312="$(pyenv root)/versions/$v/bin/python3.12"
  fi
fi
if [ -n "$py312" ] && "$py312" -c 'import sys; assert sys.version_info[:2] >= (3, 12)' >/dev/null 2>&1; then
  echo "== pytest under $("$py312" -V) (aiopquic backend, wire and unit tests)"
  VENV312=${YOMO_TEST_VENV312:-.venv-test312}
  [ -x "$VENV312/bin/python" ] || "$py312" -m venv "$VENV312"
  "$VENV312/bin/python" -m pip install -q --upgrade pip
  "$VENV312/bin/python" -m pip install -q -e '.[dev,fast]'
  "$VENV312/bin/python" -m pytest -ra tests/unit tests/integration/test_backend_aiopquic.py
else
  echo "== skipped: aiopquic backend tests (no working python3.12 on PATH; set PYTHON312=/path/to/python3.12)"
fi
