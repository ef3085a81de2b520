#!/usr/bin/env bash
# Runs the reliability suite (reliability/run.py) with the project's test venv; arguments pass through.
#   bash reliability/run.sh            # full run (3 repeats, 1 h soak, 1,000,000 fuzz inputs)
#   bash reliability/run.sh --short    # a few minutes; scripts/test.sh runs this
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv-test/bin/python}"
exec "$PY" reliability/run.py "$@"
