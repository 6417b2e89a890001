"""The rough edges a new user hits on the command line (issue 22), through the real
`forge-indexer` entry point with the real model, SQLite and Chroma: folders never indexed,
state folders that cannot be used, `context --file`, search previews, `list` and `forget`."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.e2e.daemon_helpers import env, running_daemon

pytestmark = [pytest.mark.slow]


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("FORGE_INDEXER_STATE_DIR", str(path))
    return path


def run(*argv: str, cwd: Path | None = None, stdin: int | None = subprocess.DEVNULL,
        extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`forge-indexer ARGV` as installed (the fast path first, then the full CLI)."""
    return subprocess.run([sys.executable, "-m", "server.cli", *argv], capture_output=True, text=True,
                          timeout=300, env={**env(), **(extra or {})}, cwd=cwd, stdin=stdin)


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def polyglot(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURES / "polyglot", ws)
    return ws


# -- never indexed ---------------------------------------------------------------------------


def test_a_folder_never_indexed_gets_a_clear_answer_and_nothing_is_created(tmp_path: Path, state: Path) -> None:
    ws = tmp_path / "fresh"
    ws.mkdir()
    (ws / "a.py").write_text("def f():\n    return 1\n")
    hint = f"{ws} is not indexed yet: run `forge-indexer index {ws}`"
    status = run("status", "-w", str(ws))
    assert status.returncode == 0 and status.stdout.strip() == hint + ".", status
    as_json = json.loads(run("status", "-w", str(ws), "--json").stdout)
    assert as_json["indexed"] is False and as_json["files"] == 0 and as_json["root"] == str(ws)
    assert hint in one_error(run("search", "anything", "-w", str(ws)))
    assert hint in one_error(run("context", "anything", "-w", str(ws)))
    assert hint in one_error(run("context", "--file", "a.py", "--line", "1", "-w", str(ws)))
    assert not state.exists(), sorted(str(p) for p in state.rglob("*"))


def test_usage_errors_are_one_line_and_status_1_on_both_paths(tmp_path: Path) -> None:
    # The fast path hands these to the full CLI, which prints the one line.
    for argv, says in ((["search", "q", "-k", "0"], "'-k' / '--limit'"), (["search", "q", "--bogus"], "--bogus"),
                       (["context", "q", "--budget", "x"], "--budget"), (["explain"], "missing argument"),
                       (["serach", "q"], "no such command 'serach'")):
        line = one_error(run(*argv, "-w", str(tmp_path)) if argv[0] != "serach" else run(*argv))
        assert says in line and "try `forge-indexer" in line, line
    bare = run()
    assert bare.returncode == 0 and "Usage" in bare.stdout


# -- state folders that cannot be used --------------------------------------------------------


def _unusable(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """(case, --state-dir, what the error must say), each made unusable the way a user meets it."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    yield "a file as the state root", a_file, f"{a_file} is a file, not a folder"
    yield "a file on the path", a_file / "indexes", f"{a_file} is a file, not a folder"
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root ignores permissions, not the immutable flag
        made = subprocess.run(["chattr", "+i", str(locked)], capture_output=True, text=True)
        assert made.returncode == 0, f"chattr +i is needed for this test: {made.stderr}"
    else:
        locked.chmod(0o500)
    try:
        yield "an immutable (or read-only) folder", locked, f"{locked} is not writable"
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(locked)], check=False)
        locked.chmod(0o700)


def test_an_unusable_state_folder_is_said_to_be_so_by_index_status_and_doctor(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("def f():\n    return 1\n")
    for case, state_dir, says in _unusable(tmp_path):
        for _ in range(2):  # the same answer again: nothing claims that running it again helps
            line = one_error(run("index", str(ws), "--state-dir", str(state_dir)))
            assert says in line and "cannot be created" in line and "--state-dir" in line, (case, line)
            assert "deleted while" not in line and "run the same command again" not in line, (case, line)
        line = one_error(run("status", "-w", str(ws), "--state-dir", str(state_dir)))
        assert says in line and "deleted while" not in line, (case, line)
        doctor = run("doctor", "-w", str(ws), "--state-dir", str(state_dir), "--json")
        disk = {c["check"]: c for c in json.loads(doctor.stdout)["checks"]}["disk"]
        assert doctor.returncode == 1 and disk["status"] == "fail", (case, disk)
        assert says in disk["finding"] and "--state-dir" in disk["fix"], (case, disk)


# -- an indexed workspace: search previews, context --file ------------------------------------


@pytest.fixture()
def indexed(tmp_path: Path, state: Path) -> Path:
    ws = polyglot(tmp_path)
    done = run("index", str(ws))
    assert done.returncode == 0, done.stderr
    return ws


def test_search_shows_a_clickable_place_and_a_preview_of_each_hit(indexed: Path, tmp_path: Path) -> None:
    got = run("search", "parse a duration", "-w", str(indexed), "-k", "2", cwd=indexed)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0].endswith("  src/config/loader.py:35  parse_duration  (35-47)"), lines[0]
    assert lines[1] == "    35 │ def parse_duration(text: str) -> float:", lines
    assert 2 <= sum(line.startswith("    ") for line in lines[:4]) <= 3
    assert "\x1b[" not in got.stdout  # not a terminal: no colour
    elsewhere = run("search", "parse a duration", "-w", str(indexed), "-k", "1", cwd=tmp_path)
    assert "  ws/src/config/loader.py:35  " in elsewhere.stdout.splitlines()[0]
    inside = run("search", "parse a duration", "-w", str(indexed), "-k", "1", cwd=indexed / "web")
    assert f"  {indexed}/src/config/loader.py:35  " in inside.stdout.splitlines()[0]  # not under here
    data = json.loads(run("search", "parse a duration", "-w", str(indexed), "--json").stdout)
    assert set(data["results"][0]) == {"path", "start_line", "end_line", "score", "symbol", "language"}


def test_the_in_process_search_does_not_import_lsprotocol(indexed: Path) -> None:
    got = subprocess.run([sys.executable, "-X", "importtime", "-m", "server.cli", "search", "parse a duration",
                          "-w", str(indexed)], capture_output=True, text=True, timeout=300, env=env())
    assert got.returncode == 0 and "parse_duration" in got.stdout, got.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in got.stderr.splitlines() if line.startswith("import time:")}
    assert "chromadb" in imported  # it did search in this process
    assert not {m for m in imported if m.split(".")[0] in ("lsprotocol", "pygls") and m != "pygls.uris" and m != "pygls"}


def test_context_file_is_resolved_like_every_path_and_unknown_files_are_errors(indexed: Path, tmp_path: Path) -> None:
    here = indexed / "src" / "config"
    got = run("context", "--file", "loader.py", "--line", "36", "-w", str(indexed), "--budget", "200", cwd=here)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("--- src/config/loader.py:35-"), got.stdout
    same = run("context", "--file", "src/config/loader.py", "--line", "36", "-w", str(indexed),
               "--budget", "200", cwd=tmp_path)
    assert same.stdout == got.stdout
    absolute = run("context", "--file", str(here / "loader.py"), "--line", "36", "-w", str(indexed),
                   "--budget", "200", cwd=tmp_path)
    assert absolute.stdout == got.stdout

    line = one_error(run("context", "--file", "nope.py", "--line", "1", "-w", str(indexed), cwd=here))
    assert line == f"error: src/config/nope.py does not exist in {indexed}"
    (here / "new.py").write_text("def brand_new():\n    return 2\n")
    line = one_error(run("context", "how", "--file", "new.py", "--line", "1", "-w", str(indexed), cwd=here))
    assert line.startswith(f"error: src/config/new.py is not in the index of {indexed}") and "explain" in line
    line = one_error(run("context", "--file", "debug.log", "--line", "1", "-w", str(indexed)))  # ignored
    assert "debug.log is not in the index" in line
    assert "is not inside the workspace" in one_error(
        run("context", "--file", "/etc/hostname", "--line", "1", "-w", str(indexed)))
    assert "--file and --line go together" in one_error(
        run("context", "--file", "loader.py", "-w", str(indexed), cwd=here))


def test_an_index_whose_folder_became_unwritable_says_so_not_busy(indexed: Path, state: Path) -> None:
    (folder,) = (state / "workspaces").iterdir()
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
        assert made.returncode == 0, f"chattr +i is needed for this test: {made.stderr}"
    else:
        folder.chmod(0o500)
    try:
        for argv in (["index", str(indexed)], ["status", "-w", str(indexed)], ["search", "q", "-w", str(indexed)]):
            line = one_error(run(*argv))
            assert f"the index folder {folder} is not writable" in line and "busy" not in line, (argv, line)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
        folder.chmod(0o700)
    assert run("search", "parse a duration", "-w", str(indexed)).returncode == 0


# -- list and forget -------------------------------------------------------------------------


def _answer(argv: list[str], reply: bytes) -> subprocess.CompletedProcess[str]:
    """`forge-indexer ARGV` with a terminal on stdin that types `reply`."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", *argv], stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env())
        os.close(slave)
        os.write(master, reply)
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(master)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


HOLD = """
import sys
from indexer.workspace import Workspace
with Workspace(sys.argv[1]):
    print("open", flush=True)
    sys.stdin.read()
"""


def test_list_shows_every_index_and_forget_deletes_one_only_when_it_is_free(indexed: Path, tmp_path: Path,
                                                                         state: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(FIXTURES / "lsp_ws" / "root_a", other)
    assert run("index", str(other)).returncode == 0
    listed = json.loads(run("list", "--json").stdout)
    assert listed["state_root"] == str(state.resolve())
    by_ws = {e["workspace"]: e for e in listed["indexes"]}
    assert set(by_ws) == {str(indexed), str(other)}
    entry = by_ws[str(indexed)]
    assert entry["files"] > 5 and entry["chunks"] > entry["files"] and entry["bytes"] > 10_000
    assert entry["workspace_exists"] is True and entry["in_use_by"] is None and entry["last_used"]
    table = run("list").stdout
    assert str(indexed) in table and str(other) in table and " ok" in table

    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(indexed)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        line = one_error(run("forget", str(indexed), "--yes"))
        assert "in use by another forge-indexer process" in line and f"pid {holder.pid}" in line, line
        assert f"in use (pid {holder.pid})" in run("list").stdout
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(60)
    assert Path(entry["state_dir"]).is_dir()

    assert "needs confirmation: add --yes" in one_error(run("forget", str(indexed)))
    said_no = _answer(["forget", str(indexed)], b"n\n")
    assert said_no.returncode == 1 and "nothing deleted" in said_no.stderr, said_no
    assert Path(entry["state_dir"]).is_dir()
    said_yes = _answer(["forget", str(indexed)], b"y\n")
    assert said_yes.returncode == 0 and f"deleted the index of {indexed}" in said_yes.stdout, said_yes
    assert not Path(entry["state_dir"]).exists()

    shutil.rmtree(other)  # the workspace went away: list says so, forget still works by its path
    (gone,) = json.loads(run("list", "--json").stdout)["indexes"]
    assert gone["workspace"] == str(other) and gone["workspace_exists"] is False
    assert "folder gone" in run("list").stdout
    forgot = run("forget", str(other), "--yes", "--json")
    assert forgot.returncode == 0 and json.loads(forgot.stdout)["deleted"] == [gone["state_dir"]]
    assert json.loads(run("list", "--json").stdout)["indexes"] == []
    assert "no indexes under" in run("list").stdout
    line = one_error(run("forget", str(other), "--yes"))
    assert f"{other} has no index under" in line


def test_forget_refuses_while_the_daemon_serves_and_the_fast_path_checks_context_files(indexed: Path) -> None:
    from tests.e2e.test_cli_fast import probe

    with running_daemon(indexed) as daemon:
        line = one_error(daemon.cli("forget", str(indexed), "--yes", check=False))
        assert f"a daemon (pid {daemon.pid}) serves {indexed}" in line and "daemon stop" in line
        argv = ["context", "--file", "src/config/gone.py", "--line", "1", "-w", str(indexed),
                "--state-dir", daemon.state]
        assert probe(*argv)[1] == {"code": 1, "heavy": []}  # answered through the daemon, as an error
        assert "src/config/gone.py does not exist in" in one_error(run(*argv))
    assert (daemon.paths.workspace).is_dir()
    assert json.loads(run("list", "--json").stdout)["indexes"][0]["workspace"] == str(indexed)
