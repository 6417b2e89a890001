#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system packages, .venv, lint, types, tests.
# This is the README's test command and what CI (.ci/run) runs. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# Neovim is the real LSP client of the end-to-end tests (Debian's 0.7).
if ! command -v nvim >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq neovim >/dev/null) || echo "warning: could not install neovim; its test will be skipped" >&2
fi
bash tests/setup.sh test
# shellcheck disable=SC1091
. .venv/bin/activate
echo "== ruff"; ruff check indexer server tests
echo "== mypy"; mypy
echo "== pytest"
# tests/e2e (pytest-lsp + headless Neovim against the LSP server) is not run yet: its
# fixtures hang waiting for the first indexing run (issue 3 is open). Run it by hand with
#   .venv/bin/python -m pytest tests/e2e --timeout=120
python -m pytest -q -p no:cacheprovider --timeout=900 --ignore=tests/e2e "$@"
