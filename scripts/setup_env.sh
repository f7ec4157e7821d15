#!/usr/bin/env bash
# Create .venv (once) with torch, the package, its test tools and the example plugin.
# Safe to run again: it reinstalls only when pyproject.toml or the plugin changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  # Pinned: these wheels are served locally; an open range would download a CUDA build.
  "${PIP[@]}" torch==2.14.1 torchvision==0.29.1
fi
stamp=".venv/.installed-$(cat pyproject.toml plugins/*/pyproject.toml plugins/*/src/*/*.py | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  "${PIP[@]}" -e ".[test]"
  for plugin in plugins/*/; do "${PIP[@]}" "$plugin"; done
  rm -f .venv/.installed-*
  touch "$stamp"
fi
