"""`search`, `context` and `status` through a running daemon (real daemon, real keyring):
answered by the CLI's daemon client without a heavy import, exactly as the full CLI prints
them; without a daemon, the same commands still work in-process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.e2e.daemon_helpers import cli, env, running_daemon, wait_for

pytestmark = [pytest.mark.slow]

#: What a client that only sends a request must not load (issue: "no chromadb, no
#: llama_cpp, no numpy, no tree-sitter"), and the CLI framework and settings model besides.
HEAVY = ("chromadb", "llama_cpp", "numpy", "tree_sitter", "pydantic", "typer", "rich", "lsprotocol",
         "watchdog", "sqlite_utils", "indexer.core.settings", "indexer.workspace", "server.cli")

PROBE = """
import json, sys
from server import cli_fast
try:
    code = cli_fast.answer(sys.argv[2:])
except cli_fast.Defer:
    code = "deferred"
heavy = sorted(m for m in sys.modules for h in json.loads(sys.argv[1]) if m == h or m.startswith(h + "."))
print(json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORGE_INDEXER_STATE_DIR", str(tmp_path / "state"))


def probe(*argv: str) -> tuple[str, dict[str, object]]:
    """Run the fast path in a fresh interpreter: (what it printed, its code and heavy imports)."""
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), *argv], capture_output=True,
                         text=True, timeout=120, env=env())
    assert out.returncode == 0, out.stderr
    *printed, last = out.stdout.rstrip("\n").split("\n")
    return "\n".join(printed), json.loads(last)


def full_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """The same command through the full CLI (`--log-format` is an option only it reads)."""
    return subprocess.run([sys.executable, "-m", "server.cli", "--log-format", "text", *argv],
                          capture_output=True, text=True, timeout=300, env=env())


def test_a_running_daemon_answers_the_cli_without_heavy_imports(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "polyglot", ws)
    with running_daemon(ws):
        cli("index", str(ws))  # through the daemon: it indexes, the CLI waits
        for argv in (["search", "parse a duration", "-w", str(ws), "-k", "3"],
                     ["search", "parse a duration", "-w", str(ws), "--json", "--lang", "python"],
                     ["context", "parse a duration", "-w", str(ws), "--budget", "300"],
                     ["status", "-w", str(ws), "--json"]):
            printed, result = probe(*argv)
            assert result == {"code": 0, "heavy": []}, (argv, result)
            full = full_cli(*argv)
            assert full.returncode == 0, full.stderr
            if argv[0] == "status":
                ours, theirs = json.loads(printed), json.loads(full.stdout)
                assert ours["daemon_pid"] == theirs["daemon_pid"] and ours["chunks"] == theirs["chunks"] > 0
            else:
                assert printed == full.stdout.rstrip("\n"), argv
        assert "parse_duration" in probe("search", "parse a duration", "-w", str(ws))[0]

        # An error from the daemon is one line and status 1, as in the full CLI.
        printed, result = probe("search", "x", "-w", str(ws), "--path", "[unclosed")
        assert result["code"] == 1 and result["heavy"] == []
        assert full_cli("search", "x", "-w", str(ws), "--path", "[unclosed").returncode == 1

        # What the fast path does not read goes to the full CLI before anything is sent.
        assert probe("search", "--queries", "q.txt", "-w", str(ws))[1]["code"] == "deferred"
        assert probe("search", "q", "-w", str(ws), "-k", "0")[1]["code"] == "deferred"


def test_without_a_daemon_the_commands_fall_back_to_the_full_cli(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "polyglot", ws)
    assert probe("status", "-w", str(ws))[1]["code"] == "deferred"
    cli("index", str(ws))
    found = wait_for(lambda: "parse_duration" in cli("search", "parse a duration", "-w", str(ws)).stdout,
                     60, "an in-process search")
    assert found
    bad = cli("search", "q", "-w", str(ws), "-k", "0", check=False)
    assert bad.returncode != 0 and "-k" in bad.stderr
