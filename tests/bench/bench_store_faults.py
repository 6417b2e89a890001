"""Time to detect and heal each damaged-file fault on a ~5k-chunk index, chunks embedded
again per case, and the cost of the open-time checks on a healthy index.

    python tests/bench/bench_store_faults.py                      # builds the index (~5 min)
    python tests/bench/bench_store_faults.py --workspace W --state S   # reuse a built one

The workspace is this machine's standard library modules `[a-s]*.py` (124 files, about
6k chunks). Each fault is applied to a fresh copy of the healthy state folder, then one
`forge-indexer index --json` (a child process, as a user would run it) detects and heals
it; the time is that command's wall time, minus the same command on an undamaged copy
(which loads the model and walks the workspace too) printed alongside.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def build(base: Path) -> tuple[Path, Path]:
    ws = base / "ws"
    ws.mkdir(parents=True)
    for f in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("[a-s]*.py")):
        shutil.copy(f, ws / f.name)
    state = base / "state"
    subprocess.run([sys.executable, "-m", "server.cli", "index", str(ws), "--state-dir", str(state)],
                   check=True, cwd=REPO)
    return ws, state


def wsdir(state: Path) -> Path:
    return next((state / "workspaces").iterdir())


def seg(state: Path) -> Path:
    return next(p for p in (wsdir(state) / "chroma").iterdir() if p.is_dir())


def overwrite(path: Path, offset: int, n: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(os.urandom(n))


FAULTS: dict[str, Callable[[Path], None]] = {
    "none (baseline)": lambda s: None,
    "random bytes over data_level0.bin": lambda s: overwrite(
        seg(s) / "data_level0.bin", 0, (seg(s) / "data_level0.bin").stat().st_size),
    "garbage in header.bin": lambda s: overwrite(seg(s) / "header.bin", 0, 100),
    "garbage in index_metadata.pickle": lambda s: overwrite(seg(s) / "index_metadata.pickle", 0, 4096),
    "truncated data_level0.bin": lambda s: os.truncate(
        seg(s) / "data_level0.bin", (seg(s) / "data_level0.bin").stat().st_size // 2),
    "64 KiB random in index.sqlite": lambda s: overwrite(
        wsdir(s) / "index.sqlite", (wsdir(s) / "index.sqlite").stat().st_size // 2, 64 * 1024),
    "index.sqlite truncated to 0": lambda s: os.truncate(wsdir(s) / "index.sqlite", 0),
    "chroma folder deleted": lambda s: shutil.rmtree(wsdir(s) / "chroma"),
}


def open_check_cost(ws: Path, state: Path, rounds: int = 30) -> None:
    """The checks `open_checked` adds on a healthy, cleanly closed index, in-process."""
    from indexer.core.settings import Settings
    from indexer.store.health import Health, check_chroma
    from indexer.store.index import IndexStore
    from indexer.store.recovery import open_checked
    from indexer.workspace import Workspace

    with Workspace(ws, Settings(state_dir=state)) as w:  # leaves a clean health record
        w.open_store()
        dim = w.embedder.dim
        from indexer.pipeline import config_hash

        want = config_hash(w.embedder)
    d = wsdir(state)
    checks, plain, checked = [], [], []
    for _ in range(rounds):
        t = time.perf_counter()
        health = Health.load(d)
        assert health.clean, "the index was not closed cleanly"
        result = check_chroma(d / "chroma", dim, health)
        health.clean = False
        health.save(d)
        checks.append(time.perf_counter() - t)
        assert result.bad is None and result.probe is None, result
        health.clean = True
        health.save(d)
        t = time.perf_counter()
        s = IndexStore(d, dim)
        plain.append(time.perf_counter() - t)
        s.close(clean=True)
        t = time.perf_counter()
        s = open_checked(d, dim, want)
        checked.append(time.perf_counter() - t)
        s.close(clean=True)
    ms = lambda xs: f"{statistics.median(xs) * 1000:.2f} ms"  # noqa: E731
    print(f"open-time checks alone (health.json read + HNSW header/size + fingerprint + write): {ms(checks)}")
    print(f"open the store without checks: {ms(plain)}; with checks (open_checked): {ms(checked)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", type=Path)
    ap.add_argument("--state", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    ws, state = (args.workspace, args.state) if args.workspace else build(tmp)
    template = tmp / "template"
    shutil.copytree(state, template)
    open_check_cost(ws, template)  # also records a clean close with fingerprints
    with __import__("sqlite3").connect(wsdir(template) / "index.sqlite") as conn:
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    print(f"\nindex: {chunks} chunks; one `forge-indexer index --json` per fault on a fresh copy\n")
    print(f"{'fault':38} {'seconds':>8} {'re-embedded':>12} {'exit':>5}  repair")
    for name, damage in FAULTS.items():
        copy = tmp / "case"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(template, copy)
        damage(copy)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "server.cli", "index", str(ws), "--json", "--state-dir", str(copy)],
                              capture_output=True, text=True, cwd=REPO)
        took = time.perf_counter() - t
        embedded = json.loads(proc.stdout)["chunks_embedded"] if proc.returncode == 0 else "-"
        health = json.loads((wsdir(copy) / "health.json").read_text())
        last = health["events"][-1]["what"] if health.get("events") else "-"
        print(f"{name:38} {took:8.1f} {embedded!s:>12} {proc.returncode:5}  {last}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
