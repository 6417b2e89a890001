"""`index --rev REF`: a git revision indexed from the repository's objects, never checked out.

A real git repository made here (two branches, a .gitignore, a binary, a symlink, a
submodule gitlink), the real model, Chroma and SQLite.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from indexer.core.settings import Settings
from indexer.files import gitrev
from indexer.files.gitrev import GitRevisionError, RevisionSource
from indexer.workspace import Workspace

pytestmark = pytest.mark.slow

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=ENV, check=True, capture_output=True, text=True).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: code, a .gitignore, a binary, a symlink, a submodule gitlink; branch `feature`
    adds a file; the working tree is then changed without committing."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "src").mkdir()
    (r / "src/retry.py").write_text(
        "def retry_with_backoff(fn, attempts=5):\n    \"\"\"Call fn again after exponential backoff.\"\"\"\n"
        "    for i in range(attempts):\n        try:\n            return fn()\n"
        "        except OSError:\n            pass\n")
    (r / "src/parse.py").write_text("def parse_config(text):\n    return dict(l.split('=') for l in text.splitlines())\n")
    (r / "notes.log").write_text("a log line that is gitignored\n")
    (r / "gen").mkdir()
    (r / "gen/ignored.py").write_text("def ignored_by_gitignore():\n    return 1\n")
    (r / ".gitignore").write_text("gen/\n")
    (r / "blob.dat").write_bytes(b"\x00\x01\x02binary" * 20)
    (r / "link.py").symlink_to("src/retry.py")
    (r / ".env").write_text("TOKEN=secret\n")
    git(r, "add", "-f", "gen/ignored.py")  # tracked although ignored: the tree has it
    commit_all(r, "first")
    # notes.log was committed before the .gitignore in the revision covers it.
    (r / ".gitignore").write_text("gen/\n*.log\n")
    commit_all(r, "ignore logs")
    # A submodule gitlink, without a real submodule repository.
    git(r, "update-index", "--add", "--cacheinfo", f"160000,{git(r, 'rev-parse', 'HEAD').strip()},vendor/lib")
    git(r, "commit", "-q", "-m", "gitlink")
    git(r, "checkout", "-q", "-b", "feature")
    (r / "src/cache.py").write_text("def lru_cache_get(cache, key):\n    return cache.get(key)\n")
    commit_all(r, "feature")
    git(r, "checkout", "-q", "main")
    # The working tree differs from main: --rev must not see it.
    (r / "src/parse.py").write_text("def working_tree_only():\n    return 0\n")
    (r / "src/untracked.py").write_text("def untracked_function():\n    return 0\n")
    return r


def open_rev(root: Path, tmp_path: Path, embedder, rev: str) -> Workspace:  # type: ignore[no-untyped-def]
    return Workspace(root, Settings(state_dir=tmp_path / "state"), embedder=embedder, rev=rev)


def indexed_paths(ws: Workspace) -> set[str]:
    return {r[0] for r in ws.store.sql.conn.execute("SELECT path FROM files")}


def test_revision_is_indexed_from_objects(
    repo: Path, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    readers: list[object] = []
    real_init = gitrev._BlobReader.__init__

    def counting_init(self: object, *args: object) -> None:
        readers.append(self)
        real_init(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(gitrev._BlobReader, "__init__", counting_init)
    with open_rev(repo, tmp_path, embedder, "main") as ws:
        s = ws.index()
        assert len(readers) == 1  # one `git cat-file --batch` for every blob of the run
        assert s.errors == []
        assert indexed_paths(ws) == {"src/retry.py", "src/parse.py"}
        reasons = {k.path: k.reason for k in s.skipped}
        assert "symlink" in reasons["link.py"]
        assert "submodule" in reasons["vendor/lib"]
        assert "binary" in reasons["blob.dat"]
        assert "secrets" in reasons[".env"]
        assert "notes.log" not in reasons and "gen/ignored.py" not in reasons  # ignored silently
        # The committed content, not the working tree's.
        hits = ws.search("parse config text into a dict", limit=3)
        assert hits[0].path == "src/parse.py"
        assert ws.search("working_tree_only", mode="lexical") == []
        assert ws.state_dir.name.endswith("-rev-main")
        assert ws.store.sql.get_meta("git_revision") == f"main {git(repo, 'rev-parse', 'main').strip()}"
    # The working tree's own index is another folder, untouched.
    with Workspace(repo, Settings(state_dir=tmp_path / "state"), embedder=embedder) as plain:
        assert plain.state_dir != ws.state_dir
        assert not (plain.state_dir / "index.sqlite").exists()


def test_rerun_after_ref_moved_reads_only_changed_blobs(repo: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    with open_rev(repo, tmp_path, embedder, "main") as ws:
        ws.index()
        again = ws.index()
        assert again.files_indexed == 0 and again.files_unchanged == 2 and again.chunks_embedded == 0
    git(repo, "merge", "-q", "--ff-only", "feature")  # main moves: one blob added
    with open_rev(repo, tmp_path, embedder, "main") as ws:
        moved = ws.index()
        assert moved.files_indexed == 1 and moved.files_unchanged == 2
        assert indexed_paths(ws) == {"src/retry.py", "src/parse.py", "src/cache.py"}
        assert ws.search("lru cache get key", limit=1)[0].path == "src/cache.py"
    git(repo, "rm", "-q", "src/retry.py")
    git(repo, "commit", "-q", "-m", "drop retry")
    with open_rev(repo, tmp_path, embedder, "main") as ws:
        dropped = ws.index()
        assert dropped.files_deleted == 1 and dropped.files_indexed == 0
        assert "src/retry.py" not in indexed_paths(ws)


def test_subfolder_workspace_and_other_branch(repo: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    with open_rev(repo / "src", tmp_path, embedder, "feature") as ws:
        ws.index()
        assert indexed_paths(ws) == {"retry.py", "parse.py", "cache.py"}


def test_bad_ref_and_not_a_repository(repo: Path, tmp_path: Path) -> None:
    settings = Settings()
    with pytest.raises(GitRevisionError, match=r"unknown revision 'no-such-branch'.*git fetch"):
        RevisionSource(repo, "no-such-branch", settings)
    with pytest.raises(GitRevisionError, match="not a revision name"):
        RevisionSource(repo, "--output=/tmp/x", settings)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitRevisionError, match="not inside a git repository"):
        RevisionSource(plain, "main", settings)


def test_git_not_installed(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(GitRevisionError, match="git is not installed"):
        RevisionSource(repo, "main", Settings())


def test_hostile_repository_config_runs_nothing(repo: Path, tmp_path: Path) -> None:
    """A cloned repository's .git/config naming programs (fsmonitor, external diff,
    textconv, filters, pager, hooks) must not get any of them run by --rev."""
    marker = tmp_path / "pwned"
    hook = f"touch {marker}"
    for key, value in (
        ("core.fsmonitor", hook), ("diff.external", hook), ("core.pager", hook),
        ("diff.py.textconv", hook), ("filter.evil.smudge", hook), ("filter.evil.clean", hook),
        ("filter.evil.process", hook), ("core.sshCommand", hook), ("core.hooksPath", str(tmp_path)),
    ):
        git(repo, "config", key, value)
    (repo / ".gitattributes").write_text("*.py diff=py filter=evil\n")
    (tmp_path / "post-checkout").write_text(f"#!/bin/sh\n{hook}\n")
    (tmp_path / "post-checkout").chmod(0o755)
    with RevisionSource(repo, "main", Settings()) as source:
        found = source.discover()
        loaded = [source.load(f) for f in found.files]
    assert {f.path for f in found.files} == {"blob.dat", "src/retry.py", "src/parse.py"}
    texts = {f.path: getattr(x, "text", None) for f, x in zip(found.files, loaded, strict=True)}
    assert texts["src/parse.py"].startswith("def parse_config")  # raw blob, no filter ran
    assert not marker.exists()
    # The same config does run programs for porcelain: the check above can fail.
    subprocess.run(["git", "status"], cwd=repo, env=ENV, capture_output=True, check=False)
    assert marker.exists()
    marker.unlink()


def test_cli_index_search_status_rev(repo: Path, tmp_path: Path) -> None:
    """The CLI, in-process (never through a daemon) with --rev."""
    from typer.testing import CliRunner

    from server.cli import app

    state = str(tmp_path / "cli-state")
    runner = CliRunner()
    got = runner.invoke(app, ["index", str(repo), "--rev", "feature", "--state-dir", state, "--json"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["files_indexed"] == 3
    got = runner.invoke(app, ["search", "lru cache get", "-w", str(repo), "--rev", "feature",
                              "--state-dir", state, "--json"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["results"][0]["path"] == "src/cache.py"
    got = runner.invoke(app, ["status", "-w", str(repo), "--rev", "feature", "--state-dir", state, "--json"])
    assert got.exit_code == 0, got.output
    data = json.loads(got.stdout)
    assert data["files"] == 3 and data["revision"].startswith("feature ")
    got = runner.invoke(app, ["index", str(repo), "--rev", "nope", "--state-dir", state])
    assert got.exit_code == 1 and "unknown revision 'nope'" in got.output
