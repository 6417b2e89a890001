"""Pausing and resuming a real daemon's background indexing from the CLI, and the priority
it runs at (real daemon, real keyring, real model)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import FIXTURES
from tests.e2e.daemon_helpers import Daemon, cli, running_daemon, wait_for

pytestmark = [pytest.mark.slow]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORGE_INDEXER_STATE_DIR", str(tmp_path / "state"))


def found(d: Daemon, ws: Path, word: str) -> bool:
    out = d.cli("search", word, "-w", str(ws), "--mode", "lexical", "--json")
    return any(word in (h.get("symbol") or "") for h in json.loads(out.stdout)["results"])


def test_a_paused_daemon_holds_changes_until_resumed(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "polyglot", ws)
    with running_daemon(ws) as d:
        d.cli("index", str(ws))
        assert psutil.Process(d.pid).nice() >= 10, "the daemon should index at low priority"

        # Pausing while nothing runs is allowed and says so.
        out = d.cli("pause", "-w", str(ws))
        assert "paused (nothing was running)" in out.stdout, out.stdout
        assert "already paused" in d.cli("pause", "-w", str(ws)).stdout
        status = json.loads(d.cli("status", "-w", str(ws), "--json").stdout)
        assert status["paused"] is True

        (ws / "src" / "held.py").write_text("def zebra_quota_held(n):\n    return n * 7\n")
        time.sleep(3)  # the watcher's debounce has passed: the change is queued, not indexed
        assert not found(d, ws, "zebra_quota_held")

        out = d.cli("resume", "-w", str(ws), "--json")
        answer = json.loads(out.stdout)
        assert answer["paused"] is False and answer["wasPaused"] is True and answer["waiting"] >= 1, answer
        assert wait_for(lambda: found(d, ws, "zebra_quota_held"), 60, "the held change indexed after resume")
        assert json.loads(d.cli("status", "-w", str(ws), "--json").stdout)["paused"] is False

        # Resuming what is not paused (e.g. after the daemon restarted) says so, and loses nothing.
        again = d.cli("resume", "-w", str(ws))
        assert "was not paused" in again.stdout and "restart" in again.stdout, again.stdout


def test_pause_without_a_daemon_is_a_clear_error(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    for command in ("pause", "resume"):
        out = cli(command, "-w", str(ws), check=False)
        assert out.returncode == 1
        assert out.stderr.startswith("error: no daemon serves") and "\n" not in out.stderr.strip(), out.stderr
