#!/usr/bin/env bash
# Quickstart, tests: install what is needed, then run the whole suite on 2 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python -m pytest -n 2 "$@"
