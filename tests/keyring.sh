#!/usr/bin/env bash
# Runs "$@" with a real, unlocked Secret Service (gnome-keyring) on the current D-Bus
# session bus (start it under `dbus-run-session`). The keyring's files live in a throwaway
# directory, so tests never touch the user's own keyring.
set -euo pipefail
XDG_DATA_HOME="$(mktemp -d /tmp/forge-keyring-XXXXXX)"
export XDG_DATA_HOME
trap 'rm -rf "$XDG_DATA_HOME"' EXIT
# The password only unlocks this throwaway keyring.
printf 'test-keyring' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
"$@"
