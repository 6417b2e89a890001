"""Damaged index files, a full disk and crashes between store steps, through the real CLI.

Each case starts from a copy of one healthy index (real model, real Chroma, real SQLite),
damages one file the way a power cut or a full disk would, runs one CLI command in a child
process, and checks: no signal death, no traceback, the right one-line message; then that
the index converged (chunks == vectors, same ids on both sides, empty journal), nothing
had to be embedded again, and search answers equal those of the clean index.

The workspace is 16 copies of the polyglot fixture (1,264 chunks): enough for Chroma to
write its HNSW files (it does so every 1,000 writes), so HNSW damage is real damage.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from indexer.core.settings import Settings
from tests.conftest import FIXTURES, REPO

pytestmark = pytest.mark.slow

COPIES = 16
QUERIES = ("parse a duration from the config", "http request handler", "cache eviction")
COMMANDS = ("status", "search", "context", "index")


def _template(base: Path, copies: int, embedder: Any) -> dict[str, Any]:
    """A healthy index of `copies` copies of the polyglot fixture, and what it answers."""
    from indexer.workspace import Workspace

    ws = base / "ws"
    for i in range(copies):
        shutil.copytree(FIXTURES / "polyglot", ws / f"p{i:02d}", symlinks=True)
    state = base / "state"
    with Workspace(ws, Settings(state_dir=state), embedder=embedder) as w:
        w.index()
        answers = _answers(w)
        chunks = w.status()["chunks"]
    assert isinstance(chunks, int)
    return {"ws": ws, "state": state, "answers": answers, "chunks": chunks}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> dict[str, Any]:
    """Big enough for Chroma to have written its HNSW files (over 1,000 vectors)."""
    made = _template(tmp_path_factory.mktemp("faults"), COPIES, embedder)
    assert made["chunks"] > 1000
    return made


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> dict[str, Any]:
    """For runs that are interrupted and re-run from nothing: several embedding pages."""
    made = _template(tmp_path_factory.mktemp("faults-small"), 7, embedder)
    assert made["chunks"] > 4 * 128
    return made


def _answers(w: Any) -> dict[str, list[tuple[str, int, int]]]:
    return {q: [(h.path, h.start_line, h.end_line) for h in w.search(q, limit=5)] for q in QUERIES}


@pytest.fixture
def copy(template: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the healthy index's state folder."""
    state = tmp_path / "state"
    shutil.copytree(template["state"], state)
    return state


def ws_dir(state: Path) -> Path:
    (found,) = (state / "workspaces").iterdir()
    return found


def segment(state: Path) -> Path:
    (seg,) = [p for p in (ws_dir(state) / "chroma").iterdir() if p.is_dir()]
    return seg


def cli(*args: str, state: Path, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args, "--state-dir", str(state)],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO,
    )


def run_command(command: str, ws: Path, state: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    args = {
        "status": ("status", "-w", str(ws), "--json"),
        "search": ("search", QUERIES[0], "-w", str(ws), "--json"),
        "context": ("context", QUERIES[1], "-w", str(ws), "--json"),
        "index": ("index", str(ws), "--json"),
    }[command]
    return cli(*args, state=state, **kw)


def assert_no_crash(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {proc.stderr[-2000:]}"
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]


def assert_converged(template: dict[str, Any], state: Path, embedder: Any) -> dict[str, Any]:
    """The index agrees with itself and answers like the clean one; nothing is left to embed."""
    from indexer.workspace import Workspace

    with Workspace(template["ws"], Settings(state_dir=state), embedder=embedder) as w:
        again = w.index()
        assert again.chunks_embedded == 0, "vectors were lost: something had to be embedded again"
        status = w.status()
        assert status["chunks"] == status["vectors"] == template["chunks"]
        assert w.store.vectors.all_ids() == w.store.sql.all_chunk_ids()
        assert w.store.sql.chunks_without_vector() == []
        assert w.store.sql.pending_journal()[2] == 0
        assert _answers(w) == template["answers"]
        return status


# -- damaged files ---------------------------------------------------------------------------


def _overwrite(path: Path, offset: int, n: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(os.urandom(n))


def random_over_data_level0(state: Path) -> None:
    data = segment(state) / "data_level0.bin"
    _overwrite(data, 0, data.stat().st_size)


def garbage_header(state: Path) -> None:
    _overwrite(segment(state) / "header.bin", 0, 100)


def garbage_pickle(state: Path) -> None:
    pickle = segment(state) / "index_metadata.pickle"
    _overwrite(pickle, 0, min(4096, pickle.stat().st_size))


def truncated_data_level0(state: Path) -> None:
    data = segment(state) / "data_level0.bin"
    os.truncate(data, data.stat().st_size // 2)


def random_in_sqlite(state: Path) -> None:
    db = ws_dir(state) / "index.sqlite"
    _overwrite(db, db.stat().st_size // 2, 64 * 1024)


def sqlite_truncated(state: Path) -> None:
    os.truncate(ws_dir(state) / "index.sqlite", 0)


def chroma_deleted(state: Path) -> None:
    shutil.rmtree(ws_dir(state) / "chroma")


def chroma_sqlite_truncated(state: Path) -> None:
    os.truncate(ws_dir(state) / "chroma" / "chroma.sqlite3", 4096)


CHROMA_FAULTS: dict[str, Callable[[Path], None]] = {
    "random-data-level0": random_over_data_level0,
    "garbage-header": garbage_header,
    "garbage-pickle": garbage_pickle,
    "truncated-data-level0": truncated_data_level0,
    "chroma-sqlite-truncated": chroma_sqlite_truncated,
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("fault", list(CHROMA_FAULTS))
def test_damaged_vector_store_is_quarantined_and_rebuilt_without_embedding(
    template: dict[str, Any], copy: Path, embedder: Any, fault: str, command: str
) -> None:
    CHROMA_FAULTS[fault](copy)
    proc = run_command(command, template["ws"], copy)
    assert_no_crash(proc)
    assert proc.returncode == 0, proc.stderr
    assert "vector store" in proc.stderr and "rebuilding it from the cache" in proc.stderr
    assert "--rebuild" not in proc.stderr
    if command == "index":
        assert json.loads(proc.stdout)["chunks_embedded"] == 0
    if command == "search":
        hits = json.loads(proc.stdout)["results"]
        assert [(h["path"], h["start_line"], h["end_line"]) for h in hits[:5]] == template["answers"][QUERIES[0]]
    quarantined = list(ws_dir(copy).glob("chroma.quarantined-*"))
    assert len(quarantined) == 1 and quarantined[0].is_dir()  # kept for inspection
    status = assert_converged(template, copy, embedder)
    assert status["health"]["state"] == "repaired"
    assert "quarantined" in status["health"]["events"][-1]["what"]


def test_deleted_vector_store_is_rebuilt_from_the_cache(template: dict[str, Any], copy: Path, embedder: Any) -> None:
    chroma_deleted(copy)
    proc = run_command("index", template["ws"], copy)
    assert_no_crash(proc)
    assert proc.returncode == 0 and json.loads(proc.stdout)["chunks_embedded"] == 0
    assert_converged(template, copy, embedder)


@pytest.mark.parametrize("command", COMMANDS)
def test_damaged_pages_in_sqlite_are_moved_aside_and_rebuilt_from_saved_vectors(
    template: dict[str, Any], copy: Path, embedder: Any, command: str
) -> None:
    random_in_sqlite(copy)
    proc = run_command(command, template["ws"], copy)
    assert_no_crash(proc)
    assert proc.returncode == 0, proc.stderr
    if command == "status":
        # status reads little; what it meets is reported, and the next run heals it.
        health = json.loads(proc.stdout)["health"]
        assert health["state"] in ("ok", "damaged", "repaired", "repairing")
        follow = run_command("index", template["ws"], copy)
        assert_no_crash(follow)
        assert follow.returncode == 0, follow.stderr
    if command in ("search", "context"):
        assert json.loads(proc.stdout)  # it answered
    status = assert_converged(template, copy, embedder)
    events = status["health"]["events"]
    assert any(e["what"] == "index database rebuilt" for e in events), events
    assert list(ws_dir(copy).glob("index.damaged-*.sqlite"))  # kept for inspection


@pytest.mark.parametrize("command", COMMANDS)
def test_sqlite_truncated_to_zero_reuses_the_vector_stores_vectors(
    template: dict[str, Any], copy: Path, embedder: Any, command: str
) -> None:
    sqlite_truncated(copy)
    proc = run_command(command, template["ws"], copy)
    assert_no_crash(proc)
    assert proc.returncode == 0, proc.stderr
    if command == "index":
        summary = json.loads(proc.stdout)
        assert summary["chunks_embedded"] == 0
        assert summary["repaired"]["vectors_from_chroma"] == template["chunks"]
    assert_converged(template, copy, embedder)


# -- a full disk -----------------------------------------------------------------------------


def test_sqlite_full_stops_cleanly_and_the_next_run_resumes(
    small: dict[str, Any], tmp_path: Path, embedder: Any
) -> None:
    """Deterministic: SQLite itself refuses to grow the database (SQLITE_FULL)."""
    state = tmp_path / "state"
    proc = run_command("index", small["ws"], state, env={"FORGE_INDEXER_TEST_SQLITE_MAX_PAGES": "300"})
    assert_no_crash(proc)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: disk full: ") and " MB free in " in line and "need about" in line, line
    assert "--rebuild" not in line and "corrupt" not in line
    for command in ("status", "search"):  # nothing is marked broken
        after = run_command(command, small["ws"], state)
        assert_no_crash(after)
        assert after.returncode == 0 or "not been indexed yet" in after.stderr, after.stderr
        assert "cannot be opened" not in after.stderr
    resumed = run_command("index", small["ws"], state)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    # Work stored before the disk filled is kept: files not re-read, or vectors not re-embedded.
    assert summary["files_unchanged"] > 0 or summary["chunks_embedded"] < small["chunks"], summary
    assert_converged(small, state, embedder)


def _mount_tmpfs(where: Path, size_mb: int) -> None:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root (the SQLITE_FULL variant above covers this case)")
    disk = tmp_path / "disk"
    try:
        _mount_tmpfs(disk, 20)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc})")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_disk_full_on_a_small_tmpfs_stops_cleanly_and_resumes(
    small: dict[str, Any], small_disk: Path, embedder: Any
) -> None:
    state = small_disk / "state"
    filler = small_disk / "filler"
    with filler.open("wb") as f:  # leave about 2 MB: less than the index needs
        f.write(b"\0" * (18 * 1024 * 1024))
    proc = run_command("index", small["ws"], state)
    assert_no_crash(proc)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: disk full: ") and f"MB free in {state}" in line, line
    after = run_command("status", small["ws"], state)
    assert_no_crash(after)
    # The disk is still full: status says so (and nothing about damage or --rebuild).
    assert after.returncode == 0 or after.stderr.startswith("error: disk full: "), after.stderr
    assert "cannot be opened" not in after.stderr and "--rebuild" not in after.stderr
    filler.unlink()  # the user frees space
    resumed = run_command("index", small["ws"], state)
    assert_no_crash(resumed)
    assert resumed.returncode == 0, resumed.stderr
    assert_converged(small, state, embedder)


# -- read-only and vanished state folders ----------------------------------------------------


def test_read_only_state_dir_says_so(template: dict[str, Any], copy: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        os.chmod(copy, 0o500)
        for p in copy.rglob("*"):
            os.chmod(p, 0o500 if p.is_dir() else 0o400)
        ro = copy
    else:  # root ignores permissions: a read-only bind mount is what a user would meet
        ro = tmp_path / "ro"
        ro.mkdir()
        try:
            subprocess.run(["mount", "--bind", str(copy), str(ro)], check=True)
            subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            subprocess.run(["umount", "-l", str(ro)], check=False)
            pytest.skip(f"cannot make a read-only bind mount here ({exc})")
    try:
        for command in ("index", "search"):
            proc = run_command(command, template["ws"], ro)
            assert_no_crash(proc)
            assert proc.returncode == 1
            (line,) = proc.stderr.strip().splitlines()
            assert "is not writable" in line and "--state-dir" in line, line
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(ro)], check=False)


def test_state_dir_deleted_while_open_is_recreated_without_embedding(
    template: dict[str, Any], copy: Path, embedder: Any
) -> None:
    from indexer.core.errors import StateDirUnavailable
    from indexer.workspace import Workspace

    with Workspace(template["ws"], Settings(state_dir=copy), embedder=embedder) as w:
        w.index()
        shutil.rmtree(w.state_dir)
        with pytest.raises(StateDirUnavailable, match="was deleted while forge-indexer was running"):
            w.index()
    assert_converged(template, copy, embedder)


# -- crashes between store steps -------------------------------------------------------------


@pytest.mark.parametrize(
    "point", ["after-sqlite-commit", "after-vector-cache", "after-vector-cache:4", "after-chroma-apply:3"]
)
def test_crash_between_store_steps_converges_with_nothing_embedded_twice(
    small: dict[str, Any], tmp_path: Path, embedder: Any, point: str
) -> None:
    import sqlite3

    state = tmp_path / "state"
    crashed = run_command("index", small["ws"], state, env={"FORGE_INDEXER_TEST_CRASH_AT": point})
    assert crashed.returncode == 70, crashed.stderr
    db = ws_dir(state) / "index.sqlite"
    with sqlite3.connect(db) as conn:
        cached = conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
    rerun = run_command("index", small["ws"], state)
    assert_no_crash(rerun)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["chunks_embedded"] == small["chunks"] - cached  # each text embedded once
    assert_converged(small, state, embedder)
