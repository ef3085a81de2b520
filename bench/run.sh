#!/usr/bin/env bash
# Runs the benchmark suite (bench/run.py) with the project's test venv; arguments pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv-test/bin/python}"
exec "$PY" bench/run.py "$@"
