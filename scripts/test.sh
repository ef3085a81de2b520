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
"$VENV/bin/python" -m pip install -q -e '.[dev]'
echo "== ruff"
lint_dirs=()
for d in src tests bench examples fuzz; do [ -d "$d" ] && lint_dirs+=("$d"); done
"$VENV/bin/ruff" check "${lint_dirs[@]}"
"$VENV/bin/ruff" format --check src tests
echo "== mypy (public API, strict)"
"$VENV/bin/mypy"
echo "== pytest"
"$VENV/bin/python" -m pytest -ra "$@"
