"""kill -9 in the middle of indexing, then a clean re-run: no duplicate or orphan vectors,
no chunk without a vector, and the run finishes."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def big_workspace(dest: Path) -> Path:
    """~150 real Python files from the standard library: enough for several flushes."""
    src = Path(sysconfig.get_paths()["stdlib"])
    dest.mkdir()
    for f in sorted((src / "email").glob("*.py")) + sorted((src / "json").glob("*.py")) + sorted(src.glob("[a-c]*.py")):
        shutil.copy(f, dest / f"{f.parent.name}_{f.name}")
    return dest


def cli(*args: str, state: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args, "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=timeout)


def row_count(state: Path, table: str) -> int:
    dbs = list(state.glob("workspaces/*/index.sqlite"))
    if not dbs:
        return 0
    try:
        with sqlite3.connect(f"file:{dbs[0]}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize(
    ("table", "kill_after"),
    # Phase 1 (chunks being stored) and phase 2 (vectors being embedded and pushed to Chroma).
    [("chunks", 1), ("vectors", 300)],
)
def test_kill_9_then_rerun_repairs(tmp_path: Path, table: str, kill_after: int) -> None:
    ws = big_workspace(tmp_path / "ws")
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "index", str(ws), "--state-dir", str(state)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and row_count(state, table) < kill_after:
        time.sleep(0.05)
    assert proc.poll() is None, "indexing finished before it could be killed; use a bigger workspace"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial_chunks, partial_vectors = row_count(state, "chunks"), row_count(state, "vectors")
    assert row_count(state, table) >= kill_after

    rerun = cli("index", str(ws), "--json", state=state)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["errors"] == []
    assert summary["files_unchanged"] >= 1  # work done before the kill was kept
    if table == "vectors":  # vectors embedded before the kill were not embedded again
        assert partial_vectors >= kill_after and summary["chunks_embedded"] <= partial_chunks - partial_vectors

    status = json.loads(cli("status", "-w", str(ws), "--json", state=state).stdout)
    assert status["vectors"] == status["chunks"] >= partial_chunks
    assert status["semantic_coverage"] == 1.0

    # Exact agreement of ids, and no chunk without a cached vector.
    from indexer.core.settings import Settings
    from indexer.workspace import Workspace

    with Workspace(ws, Settings(state_dir=state)) as w:
        assert w.store.vectors.all_ids() == w.store.sql.all_chunk_ids()
        assert w.store.sql.chunks_without_vector() == []
        assert w.store.sql.pending_journal()[2] == 0
        again = w.index()
        assert again.chunks_embedded == 0 and again.files_indexed == 0
