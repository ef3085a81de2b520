#!/usr/bin/env bash
# Runs the benchmark suite with the project's test venv; arguments pass to bench/run.py.
# After a full run (not --quick, not --render) bench/nats_compare.py adds the NATS column
# (Python clients: our zipper vs nats-server + nats-py, and the loopback UDP ceiling) to
# bench/RESULTS.md. nats-server is built from the Go module proxy into .cache/nats.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv-test/bin/python}"
NATS_VERSION=v2.12.2
"$PY" bench/run.py "$@"
for arg in "$@"; do
  case "$arg" in --quick|--render|--render=*|-h|--help) exit 0 ;; esac
done
if [ ! -x .cache/nats/nats-server ]; then
  echo "== building nats-server $NATS_VERSION into .cache/nats"
  GOBIN="$PWD/.cache/nats" go install "github.com/nats-io/nats-server/v2@$NATS_VERSION"
fi
"$PY" -c 'import nats, psutil' 2>/dev/null || "$PY" -m pip install -q -e '.[bench]'
"$PY" bench/nats_compare.py --publish
