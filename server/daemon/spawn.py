"""Find the workspace's daemon, or start one (what `forge-indexer lsp` does).

The daemon runs as its own process in its own session, not inside the editor's server
process: editors kill their server when they close, and a second editor relying on the
first one's process would lose its index with it. A lock file in the runtime dir makes
concurrent starts (two editors opening at once) start one daemon.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from server.daemon.client import DaemonUnavailable, Endpoint, find_daemon
from server.daemon.paths import DaemonPaths

START_TIMEOUT_S = 60.0


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def daemon_env(settings: Any, *extra: str) -> dict[str, str]:
    """The environment a daemon started for `settings` gets: the user-only settings (state
    dir, model, ...) decide which index it opens, and reach it this way, never through its
    arguments; `extra` names more settings to pass on (an editor's `index_on_startup`)."""
    from indexer.core.settings import ENV_PREFIX, USER_ONLY_KEYS

    return {ENV_PREFIX + k.upper(): str(getattr(settings, k)) for k in (*USER_ONLY_KEYS, *extra)
            if getattr(settings, k) is not None}


def ensure_daemon(paths: DaemonPaths, log_path: Path, env: dict[str, str] | None = None) -> Endpoint:
    """The running daemon's endpoint, starting the daemon first if there is none."""
    try:
        with FileLock(str(paths.spawn_lock), timeout=START_TIMEOUT_S):
            endpoint = find_daemon(paths)
            if endpoint is not None:
                return endpoint
            return _start(paths, log_path, env)
    except Timeout:
        raise DaemonUnavailable(
            f"another process has been starting the daemon for {paths.workspace} for over "
            f"{START_TIMEOUT_S:.0f} s (lock {paths.spawn_lock})"
        ) from None


def _start(paths: DaemonPaths, log_path: Path, env: dict[str, str] | None) -> Endpoint:
    # Only the workspace path goes on the command line; the secret comes from the keyring.
    cmd = [sys.executable, "-m", "server.daemon", "-w", str(paths.workspace), "--background"]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, env={**os.environ, **(env or {})},
    )
    # Reap it whenever it exits, so that it never lingers as a zombie of the editor's process.
    threading.Thread(target=proc.wait, name="forge-daemon-reaper", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        endpoint = find_daemon(paths)
        if endpoint is not None and endpoint.pid == proc.pid:
            return endpoint
        code = proc.poll()
        if code is not None:
            raise DaemonUnavailable(
                f"the daemon for {paths.workspace} exited at start (status {code}): "
                f"{_tail(log_path) or 'no log'} (log: {log_path})"
            )
        time.sleep(0.05)
    raise DaemonUnavailable(
        f"the daemon for {paths.workspace} did not start within {START_TIMEOUT_S:.0f} s (log: {log_path})"
    )
