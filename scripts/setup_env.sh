#!/usr/bin/env bash
# Create .venv (once) with torch, the package, its test tools and the plugins; chromium for the browser test.
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
  # torch's x86_64 wheel comes with CUDA libraries: about 6 GB in the venv. Say so before pip runs out of space.
  free_gb=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
  if [ "${free_gb:-0}" -lt 7 ]; then
    echo "setup_env: only ${free_gb} GB free on $(df -P . | awk 'NR==2 {print $6}'); torch needs about 7 GB." \
         "Free some space (old clones, /tmp) and run this again." >&2
    exit 1
  fi
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
# A real headless browser for the HTML report's test (Debian's chromium + chromium-driver), when
# missing and this user may install system packages; otherwise that test says what to install.
if { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; } \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } \
    || echo "setup_env: could not install chromium + chromium-driver; tests/test_report_browser.py will fail" >&2
fi
