#!/usr/bin/env bash
# Quickstart, main job: train a CNN on scikit-learn's digits images and print the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/sklearn-imgcls demo "$@"
