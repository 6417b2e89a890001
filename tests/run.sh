#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system packages, .venv, lint, types, tests.
# This is the README's test command and what CI (.ci/run) runs. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# Neovim is the real LSP client of the end-to-end tests (Debian's 0.7).
if ! command -v nvim >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq neovim >/dev/null) || echo "warning: could not install neovim" >&2
fi
bash tests/setup.sh test
# shellcheck disable=SC1091
. .venv/bin/activate
echo "== ruff"; ruff check indexer server tests
echo "== mypy"; mypy
echo "== pytest"
# Everything: unit, integration (real model, Chroma, SQLite) and end to end (pytest-lsp and
# headless Neovim against the real server).
python -m pytest -q -p no:cacheprovider --timeout=900 "$@"
