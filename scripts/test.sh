#!/usr/bin/env bash
# The whole test suite from scratch: own venv, lint, type check, tests.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
# Two phases below run two independent parts side by side, to keep CI (.ci/run) well
# under 30 minutes on 2 cores: one part in the background with its output kept in a
# log and printed when both are done, the other in the foreground. Nothing is dropped
# or shortened. YOMO_TEST_SERIAL=1 runs everything one part after the other (to tell a
# failure under load from a real one).
serial=${YOMO_TEST_SERIAL:-0}
bg_pid="" bg_log="" bg_name=""
# stop_tree PID: PID, then every process below it (this script's own children only;
# the kernel's /proc/PID/task/*/children, no procps needed).
stop_tree() {
  local child children
  children=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
  kill "$1" 2>/dev/null || true
  for child in $children; do stop_tree "$child"; done
}
cleanup() {
  if [ -n "$bg_pid" ]; then stop_tree "$bg_pid"; fi
  if [ -n "$bg_log" ]; then rm -f "$bg_log"; fi
}
trap cleanup EXIT
# bg_start NAME COMMAND...: COMMAND in the background, its output kept for bg_finish.
bg_start() {
  bg_name=$1
  shift
  bg_log=$(mktemp "${TMPDIR:-/tmp}/yomo-test-bg.XXXXXX")
  echo "== meanwhile, in the background: $bg_name (its output is printed when it ends)"
  "$@" >"$bg_log" 2>&1 &
  bg_pid=$!
}
# bg_finish: waits for the background part, prints its output, stops here if it failed.
bg_finish() {
  local rc=0
  wait "$bg_pid" || rc=$?
  bg_pid=""
  echo "== the background part: $bg_name"
  cat "$bg_log"
  rm -f "$bg_log"
  bg_log=""
  if [ "$rc" != 0 ]; then
    echo "== FAILED: $bg_name (rc=$rc, output above)"
    exit "$rc"
  fi
}
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
# integration test on the native path) and by its own unit tests (`cargo test --lib`
# in native/: the slow lane's order of work, the read-ahead credit's bounds, which no
# Python test can pin down), run in the background part below.
echo "== ruff"
lint_dirs=()
for d in src tests bench examples fuzz reliability; do [ -d "$d" ] && lint_dirs+=("$d"); done
"$VENV/bin/ruff" check "${lint_dirs[@]}"
"$VENV/bin/ruff" format --check src tests
if command -v cargo >/dev/null 2>&1 && cargo fmt --version >/dev/null 2>&1; then
  echo "== cargo fmt --check (native/)"
  (cd native && cargo fmt --check)
fi
echo "== mypy (public API, strict)"
"$VENV/bin/mypy"
# The integration suite's core: routing, handshake, bad input, backpressure, both client
# APIs, TLS (mutual too), reconnect and mesh. Run again below on other data paths and
# interpreters.
integration_core=(
  tests/integration/test_zipper_routing.py tests/integration/test_zipper_handshake.py
  tests/integration/test_zipper_bad_input.py tests/integration/test_zipper_backpressure.py
  tests/integration/test_client_async.py tests/integration/test_client_sync.py
  tests/integration/test_tls.py tests/integration/test_reconnect.py tests/integration/test_mesh.py
)
native_ok=0
if "$VENV/bin/python" -c 'from yomo.transport.native import available; raise SystemExit(not available())'; then
  native_ok=1
  main_python="$(cd "$VENV" && pwd)/bin/python"
fi
# The pure-Python data path stays complete and selectable: the integration suite's
# core again with YOMO_QUIC_BACKEND=qh3 (zipper and clients on qh3/aioquic).
qh3_pass() {
  if [ "$native_ok" = 1 ]; then
    echo "== pytest, pure-Python data path (YOMO_QUIC_BACKEND=qh3)"
    YOMO_QUIC_BACKEND=qh3 "$VENV/bin/python" -m pytest -ra -q "${integration_core[@]}"
  fi
}
# native_unit_tests: native/'s Rust unit tests (a debug build of its own, in the same
# cargo cache), linked against the venv's interpreter like the module itself.
native_unit_tests() {
  if [ "$native_ok" = 1 ]; then
    if cargo clippy --version >/dev/null 2>&1; then
      # clippy's deny-level lints (its warnings print, and do not fail a newer toolchain)
      echo "== cargo clippy --all-targets (native/)"
      (cd native && PYO3_PYTHON="$main_python" cargo clippy --all-targets --quiet)
    fi
    echo "== cargo test --lib (native/)"
    (cd native && PYO3_PYTHON="$main_python" cargo test --lib --quiet)
  fi
}
# interop_then_qh3: the Go interop tests, then the pure-Python path's pass and the
# native unit tests.
interop_then_qh3() {
  "$VENV/bin/python" -m pytest -ra --durations=10 tests/interop
  qh3_pass
  native_unit_tests
}
echo "== pytest"
# --durations: the slowest tests in the log, to keep CI (.ci/run) well under 30 minutes.
started=$SECONDS
if [ $# = 0 ] && [ "$serial" != 1 ]; then
  # The Go interop tests (tests/interop) in a pytest of their own beside the rest: they
  # mostly wait on Go processes (building the Go peers on a cold cache, Go's 60 s
  # tool-call timeout in test_llm_bridge.py), so the rest uses the time. The qh3 pass
  # follows them there: the rest takes longer (~9 minutes against ~5).
  bg_start "pytest tests/interop (Go interop), then the pure-Python path's pass and cargo test" interop_then_qh3
  "$VENV/bin/python" -m pytest -ra --durations=25 --ignore=tests/interop
  bg_finish
  echo "== pytest, the qh3 pass and cargo test: $((SECONDS - started)) s (whole script so far: $SECONDS s)"
else
  "$VENV/bin/python" -m pytest -ra --durations=25 "$@"
  echo "== pytest: $((SECONDS - started)) s (whole script so far: $SECONDS s)"
  qh3_pass
  if [ $# = 0 ]; then native_unit_tests; fi
fi
# Other interpreters get venvs of their own (.venv-test3NN). The native module is
# abi3 (one binary for Python 3.10+, as in a wheel): it is built once, above, and
# reused: PYO3_PYTHON names the interpreter that built it (main_python), so cargo finds
# everything fresh and each install copies the same binary instead of rebuilding pyo3
# (~30 s each).
# find_python 3.NN: a working interpreter of that version (PYTHON3NN, python3.NN on PATH,
# or pyenv's install of it), else nothing.
find_python() {
  local ver=$1 var="PYTHON${1/./}" ver_tuple="${1/./, }" cand="" v
  cand=${!var:-}
  if [ -z "$cand" ] && command -v "python$ver" >/dev/null 2>&1 && "python$ver" -c '' >/dev/null 2>&1; then
    cand="python$ver"
  fi
  if [ -z "$cand" ] && command -v pyenv >/dev/null 2>&1; then  # a shim whose version is not selected
    v=$(pyenv versions --bare 2>/dev/null | grep -E "^${ver//./\\.}(\.|$)" | tail -n 1 || true)
    [ -n "$v" ] && cand="$(pyenv root)/versions/$v/bin/python$ver"
  fi
  if [ -n "$cand" ] && "$cand" -c "import sys; raise SystemExit(sys.version_info[:2] != ($ver_tuple))" >/dev/null 2>&1; then
    echo "$cand"
  fi
}
# version_venv PYTHON DIR EXTRAS: DIR made with PYTHON and the checkout installed in it.
version_venv() {
  [ -x "$2/bin/python" ] || "$1" -m venv "$2"
  "$2/bin/python" -m pip install -q --upgrade pip
  if [ "$native_ok" = 1 ]; then
    PYO3_PYTHON="$main_python" PYTHON_SYS_EXECUTABLE="$main_python" \
      "$2/bin/python" -m pip install -q -e ".[$3]"
  else
    "$2/bin/python" -m pip install -q -e ".[$3]"
  fi
}
# other_pythons: the passes under the other interpreters, one after another (their
# installs and wheel tests write the same checkout files: build/, src/*.egg-info).
other_pythons() {
  # The oldest and newest supported Pythons (3.10, 3.13), on the default install: unit
  # tests and the integration core, on the native path where it was built.
  main_ver=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  for ver in 3.10 3.13; do
    if [ "$ver" = "$main_ver" ]; then
      echo "== Python $ver: the main run above used it"
      continue
    fi
    pyv=$(find_python "$ver")
    if [ -z "$pyv" ]; then
      echo "== skipped: Python $ver pass (no working python$ver on PATH or in pyenv; set PYTHON${ver/./}=/path/to/python$ver)"
      continue
    fi
    venv_v=".venv-test${ver/./}"
    if [ "$native_ok" = 1 ]; then
      path_v=native
    else
      path_v="the pure-Python path (the native module is not built here)"
    fi
    echo "== pytest under $("$pyv" -V) (default install, $path_v): unit tests and the integration core"
    started=$SECONDS
    version_venv "$pyv" "$venv_v" dev
    if [ "$native_ok" = 1 ]; then
      YOMO_QUIC_BACKEND=native "$venv_v/bin/python" -m pytest -ra -q tests/unit "${integration_core[@]}"
    else
      "$venv_v/bin/python" -m pytest -ra -q tests/unit "${integration_core[@]}"
    fi
    echo "== Python $ver pass: $((SECONDS - started)) s"
  done
  # The optional aiopquic backend has wheels for Python 3.12+ only: its tests and the
  # wire/unit tests again under 3.12, in a venv of its own, when a python3.12 runs here.
  py312=$(find_python 3.12)
  if [ -n "$py312" ]; then
    echo "== pytest under $("$py312" -V) (aiopquic backend, wire and unit tests)"
    VENV312=${YOMO_TEST_VENV312:-.venv-test312}
    version_venv "$py312" "$VENV312" dev,fast
    "$VENV312/bin/python" -m pytest -ra tests/unit tests/integration/test_backend_aiopquic.py
  else
    echo "== skipped: aiopquic backend tests (no working python3.12 on PATH or in pyenv; set PYTHON312=/path/to/python3.12)"
  fi
}
# The reliability suite beside the other interpreters' passes: the suite mostly waits
# on paced traffic and fixed fault windows, so the other venvs' installs and tests fit
# beside it (one after the other: ~6.5 + ~6.5 minutes). The suite builds nothing, so
# the installs (which write src/*.egg-info and swap the native module's copy in src/
# by rename) cannot disturb it.
reliability_short() {
  echo "== reliability suite, short version (reliability/README.md; the full run: bash reliability/run.sh)"
  local started=$SECONDS
  PYTHON="$VENV/bin/python" bash reliability/run.sh --short
  echo "== reliability suite, short version: $((SECONDS - started)) s (whole script so far: $SECONDS s)"
}
started=$SECONDS
if [ "$serial" = 1 ]; then
  reliability_short
  other_pythons
else
  bg_start "the other Pythons' passes" other_pythons
  reliability_short
  bg_finish
fi
echo "== reliability suite and the other Pythons' passes: $((SECONDS - started)) s"
echo "== all passed: $SECONDS s"
