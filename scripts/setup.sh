#!/usr/bin/env bash
# Set up fmtheory in ./.venv (Python >= 3.11): CPU PyTorch, the package with its dev, Ray and pretrained extras.
# Idempotent: a second call only checks.  Override the interpreter with PYTHON=/path/to/python3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "fmtheory needs Python >= 3.11 (found $("$PY" --version 2>&1))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.fmtheory-setup
want="$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # The CPU build of PyTorch (the project accepts torch>=2.2,<3; CUDA builds work too).
  .venv/bin/python -m pip install -q "torch==2.13.0" || .venv/bin/python -m pip install -q "torch>=2.2,<3"
  .venv/bin/python -m pip install -q -e ".[dev,ray,pretrained]"
  echo "$want" > "$stamp"
fi
