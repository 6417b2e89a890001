"""Bad files are skipped or reported with a reason; the run finishes and loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.core.settings import default_cache_root

pytestmark = pytest.mark.slow


def make_bad_files(root: Path) -> None:
    bad = root / "bad"
    bad.mkdir()
    (bad / "image.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + os.urandom(4000))
    (bad / "bundle.js").write_text("var a=1;" * (5 * 1024 * 1024 // 8))  # 5 MB, one line
    (bad / "latin1.py").write_bytes(b"name = '\xe9t\xe9'\n")  # not UTF-8
    (bad / "long_line.py").write_text("x = '" + "a" * 200_000 + "'\n")
    (bad / "empty.py").write_text("")
    (bad / "loop_a").symlink_to(bad / "loop_b")
    (bad / "loop_b").symlink_to(bad / "loop_a")
    (bad / "outside").symlink_to("/etc/hostname")
    (bad / "dir_loop").symlink_to(bad, target_is_directory=True)
    os.mkfifo(bad / "pipe.fifo")


def test_bad_inputs_reported_and_good_files_indexed(polyglot: Path, open_ws) -> None:  # type: ignore[no-untyped-def]
    make_bad_files(polyglot)
    ws = open_ws(polyglot)
    summary = ws.index()
    reasons = {s.path: s.reason for s in summary.skipped} | {e.path: e.error for e in summary.errors}
    for name in ("image.bin", "bundle.js", "latin1.py", "long_line.py", "loop_a", "loop_b", "outside",
                 "dir_loop", "pipe.fifo"):
        assert f"bad/{name}" in reasons, (name, reasons)
        assert reasons[f"bad/{name}"], name
    assert summary.files_skipped == len(summary.skipped)
    assert summary.files_indexed >= 14  # every good fixture file still indexed
    assert ws.search("FNV-1a hash of bytes", limit=1)[0].path == "native/hash.c"
    data = summary.to_json()
    json.dumps(data)  # serialisable
    assert all(set(s) == {"path", "reason"} for s in data["skipped"])  # type: ignore[union-attr]


def test_unreadable_file_is_an_error_not_a_crash(polyglot: Path, tmp_path: Path, embedder: object) -> None:
    """Runs the real CLI as an unprivileged user, who cannot read a chmod-000 file.

    (Root reads everything, so the test drops to uid 65534 with setpriv; the test run is
    root on CI and on the developers' machines, which tests/run.sh relies on anyway.)"""
    assert os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv (util-linux)"
    secret = polyglot / "secret.py"
    secret.write_text("def hidden():\n    return 1\n")
    secret.chmod(0)
    state = tmp_path / "nobody-state"
    state.mkdir()
    for p in [tmp_path, *tmp_path.parents, polyglot, *polyglot.rglob("*")]:
        if p != secret and not p.is_symlink():
            p.chmod(p.stat().st_mode | 0o005 | (0o002 if p in (state,) else 0))
    state.chmod(0o777)
    # nobody gets its own copy of the converted model (the user cache dir is root's).
    cache = tmp_path / "nobody-cache"
    shutil.copytree(default_cache_root(), cache)
    for p in [cache, *cache.rglob("*")]:
        p.chmod(0o777 if p.is_dir() else 0o666)
    env = {**os.environ, "HOME": str(tmp_path), "FORGE_INDEXER_STATE_DIR": str(state),
           "FORGE_INDEXER_CACHE_DIR": str(cache), "XDG_CONFIG_HOME": str(tmp_path / "nobody-config")}
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "server.cli",
         "index", str(polyglot), "--json"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    errors = {e["path"]: e["error"] for e in data["errors"]}
    assert "secret.py" in errors and "ermission" in errors["secret.py"]
    assert data["files_indexed"] >= 14
