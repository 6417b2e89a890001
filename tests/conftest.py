"""Shared test set-up: every test gets a private state dir; the model cache is shared.

The converted default model is cached in the normal user cache dir (unless the caller set
FORGE_INDEXER_CACHE_DIR), so it is converted once per machine, not once per test run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


@pytest.fixture(autouse=True)
def _private_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test may touch the user's real index state or config."""
    monkeypatch.setenv("FORGE_INDEXER_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    yield


@pytest.fixture(scope="session", autouse=True)
def _daemon_runtime() -> Iterator[Path]:
    """Daemons started by tests (through `forge-indexer lsp`) live in a private runtime dir.

    A short path (Unix socket paths are limited to ~100 bytes), an idle timeout short
    enough that a daemon a test left behind stops by itself, and every daemon still
    running at the end of the session killed.
    """
    run = Path(tempfile.mkdtemp(prefix="fr-", dir="/tmp"))
    saved = {k: os.environ.get(k) for k in ("XDG_RUNTIME_DIR", "FORGE_INDEXER_DAEMON_IDLE_TIMEOUT_S")}
    os.environ["XDG_RUNTIME_DIR"] = str(run)
    os.environ["FORGE_INDEXER_DAEMON_IDLE_TIMEOUT_S"] = "20"
    try:
        yield run
    finally:
        kill_daemons(run)
        shutil.rmtree(run, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def kill_daemons(run: Path | None = None) -> list[int]:
    """SIGKILL every daemon registered in the runtime dir; their pids."""
    base = (run or Path(os.environ["XDG_RUNTIME_DIR"])) / "forge-indexer"
    pids = []
    for entry in base.glob("*.json"):
        try:
            pid = int(json.loads(entry.read_text())["pid"])
            os.kill(pid, signal.SIGKILL)
            pids.append(pid)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return pids


def pytest_report_header(config: pytest.Config) -> str:
    return f"forge-indexer cache: {os.environ.get('FORGE_INDEXER_CACHE_DIR', '(user cache dir)')}"
