"""The `forge-indexer` command line end to end (real model, real stores)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def run(*args: str, state: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args, "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


def test_index_search_context_status(polyglot: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    out = run("index", str(polyglot), "--json", state=state)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in ("files_indexed", "files_unchanged", "files_skipped", "files_deleted", "chunks_embedded",
                "chunks_reused", "tokens_embedded", "seconds", "skipped", "errors"):
        assert key in data
    assert set(data["seconds"]) >= {"discover", "chunk", "embed", "store", "total"}

    out = run("search", "exponential backoff with jitter", "-w", str(polyglot), "-k", "3", "--json", state=state)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)["results"]
    assert res[0]["path"] == "src/net/retry.py"
    assert set(res[0]) == {"path", "start_line", "end_line", "score", "symbol", "language"}

    qfile = tmp_path / "q.txt"
    qfile.write_text("invoice total in cents\n\nslug for a blog title\n")
    out = run("search", "--queries", str(qfile), "-w", str(polyglot), "-k", "5", state=state)
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [x["query"] for x in lines] == ["invoice total in cents", "slug for a blog title"]
    assert lines[1]["results"][0]["path"] == "scripts/slugify.rb"

    out = run("search", "rate limiter", "-w", str(polyglot), "--lang", "java", "--path", "services/**", "--json",
              state=state)
    assert {r["language"] for r in json.loads(out.stdout)["results"]} == {"java"}

    out = run("search", "rate limiter", "-w", str(polyglot), "--path", "[unclosed", state=state)
    assert out.returncode == 1 and out.stderr.startswith("error: ") and "never closed" in out.stderr
    out = run("search", "rate limiter", "-w", str(polyglot), "--min-score", "0.99", "--json", state=state)
    assert all(r["score"] >= 0.99 for r in json.loads(out.stdout)["results"])

    out = run("context", "how are invoices totalled", "-w", str(polyglot), "--budget", "200", "--json", state=state)
    ctx = json.loads(out.stdout)
    assert 0 < ctx["tokens_used"] <= 200 and ctx["snippets"]

    st = json.loads(run("status", "-w", str(polyglot), "--json", state=state).stdout)
    assert st["vectors"] == st["chunks"] > 0 and st["files"] == data["files_indexed"]
    assert st["state_dir"].startswith(str(state)) and st["last_indexed"] and st["model"]


def test_errors_are_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    empty = tmp_path / "never-indexed"
    empty.mkdir()
    out = run("search", "anything", "-w", str(empty), state=state)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and "is not indexed yet: run `forge-indexer index" in out.stderr
    assert "Traceback" not in out.stderr
    out = run("index", str(tmp_path / "missing"), state=state)
    assert out.returncode == 1 and "does not exist" in out.stderr


def test_model_command(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "server.cli", "model", "--json"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["dim"] == 384 and str(info["path"]).endswith(".gguf")


def test_help_for_every_command() -> None:
    for cmd in ("index", "search", "context", "status", "model", "lsp", "list", "forget"):
        out = subprocess.run([sys.executable, "-m", "server.cli", cmd, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "Usage" in out.stdout, cmd
