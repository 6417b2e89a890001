#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system packages, .venv, lint, types, tests.
# This is the README's test command and what CI (.ci/run) runs. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# Neovim is the real LSP client of the end-to-end tests (Debian's 0.7); gnome-keyring and
# dbus give the daemon tests a real Secret Service (keyring backend).
missing=""
command -v nvim >/dev/null 2>&1 || missing="$missing neovim"
command -v gnome-keyring-daemon >/dev/null 2>&1 || missing="$missing gnome-keyring"
command -v dbus-run-session >/dev/null 2>&1 || missing="$missing dbus"
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null) \
        || echo "warning: could not install$missing" >&2
fi
bash tests/setup.sh test
# shellcheck disable=SC1091
. .venv/bin/activate
echo "== ruff"; ruff check indexer server tests
echo "== mypy"; mypy
command -v npm >/dev/null 2>&1 || { echo "error: npm (Node 20) is needed for tests/e2e/test_vscode_extension.py" >&2; exit 1; }
echo "== pytest"
# Everything: unit, integration (real model, Chroma, SQLite) and end to end (pytest-lsp and
# headless Neovim against the real server).
# They run inside a private D-Bus session with an unlocked gnome-keyring (tests/keyring.sh).
dbus-run-session -- bash tests/keyring.sh python -m pytest -q -p no:cacheprovider --timeout=900 "$@"
