#!/usr/bin/env bash
# Runs the benchmark suite with the project's test venv; arguments pass to bench/run.py.
# After a full run (not --quick, not --render, not --only) bench/nats_compare.py adds the
# NATS column (Python clients: our zipper vs nats-server + nats-py, and the loopback UDP
# ceiling) to bench/RESULTS.md, and bench/goals.py writes the goals of issue 16 at its top
# from both runs. nats-server is built from the Go module proxy into .cache/nats; the
# profile of the native zipper needs `perf` (Debian: linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv-test/bin/python}"
NATS_VERSION=v2.12.2
"$PY" -c 'import nats, psutil, matplotlib' 2>/dev/null || "$PY" -m pip install -q -e '.[bench]'
if ! command -v perf >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing perf (Debian package linux-perf) for the native zipper's profile"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null) \
    || echo "== linux-perf could not be installed: the profile will say so"
fi
"$PY" bench/run.py "$@"
for arg in "$@"; do
  case "$arg" in --quick|--render|--render=*|--only|--only=*|-h|--help) exit 0 ;; esac
done
if [ ! -x .cache/nats/nats-server ]; then
  echo "== building nats-server $NATS_VERSION into .cache/nats"
  GOBIN="$PWD/.cache/nats" go install "github.com/nats-io/nats-server/v2@$NATS_VERSION"
fi
"$PY" bench/nats_compare.py --publish
"$PY" bench/goals.py --publish
