"""A state folder that cannot be created or written is said to be so, never "deleted while
forge-indexer was running" (which tells the user to run the same command again, forever);
and read-only commands create nothing for a folder never indexed."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from indexer.core.errors import NotIndexed, StateDirUnavailable, StateDirVanished
from indexer.core.settings import Settings
from indexer.store.recovery import check_writable, in_the_way, translate
from indexer.workspace import Workspace, state_dir_for


def _immutable(path: Path) -> bool:
    """`chattr +i` (root ignores permissions, not the immutable flag); False if unsupported."""
    if os.geteuid() != 0:
        path.chmod(0o500)
        return True
    return subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0


def _mutable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=False)
    path.chmod(0o700)


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM, errno.EROFS])
def test_a_folder_that_could_not_be_created_is_unwritable_not_vanished(tmp_path: Path, code: int) -> None:
    state = tmp_path / "state" / "workspaces" / "ws-123"
    err = translate(OSError(code, os.strerror(code), str(state.parent)), state)
    assert isinstance(err, StateDirUnavailable) and not isinstance(err, StateDirVanished)
    assert f"{state} cannot be created: {tmp_path} is not writable ({os.strerror(code)})" in str(err)
    assert "--state-dir" in str(err) and "run the same command again" not in str(err)


def test_a_file_in_the_path_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a folder")
    state = blocker / "workspaces" / "ws-123"
    assert in_the_way(state) == blocker
    for exc in (NotADirectoryError(errno.ENOTDIR, "Not a directory"), FileExistsError(errno.EEXIST, "File exists")):
        err = translate(exc, state)
        assert isinstance(err, StateDirUnavailable) and not isinstance(err, StateDirVanished)
        assert f"{blocker} is a file, not a folder" in str(err) and f"move or delete {blocker}" in str(err)
    assert check_writable(state) is not None


def test_the_state_folder_itself_a_file(tmp_path: Path) -> None:
    state = tmp_path / "ws-123"
    state.write_text("")
    err = translate(FileExistsError(errno.EEXIST, "File exists"), state)
    assert err is not None and str(err).startswith(f"the index folder {state} is a file, not a folder: move or delete it")


def test_a_real_vanish_is_still_a_vanish(tmp_path: Path) -> None:
    state = tmp_path / "gone"  # its parent is there and writable: it was deleted
    err = translate(FileNotFoundError(errno.ENOENT, "No such file or directory"), state)
    assert isinstance(err, StateDirVanished)


def test_check_writable_probes_an_immutable_folder_and_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert check_writable(root / "workspaces" / "x") is None
    if not _immutable(root):
        pytest.skip("chattr +i is not supported on this file system")
    try:
        err = check_writable(root / "workspaces" / "x")
        assert err is not None and f"{root} is not writable" in err.finding and err.fix and "--state-dir" in err.fix
    finally:
        _mutable(root)
    assert list(root.iterdir()) == []


def test_sqlite_unable_to_open_in_an_unwritable_folder_is_unwritable_not_busy(tmp_path: Path) -> None:
    from indexer.core.errors import StoreBusy

    folder = tmp_path / "ws-123"
    folder.mkdir()
    busy = StoreBusy("The index database is busy (unable to open database file); retrying.")
    assert translate(busy, folder) is None  # a writable folder: it is busy
    if not _immutable(folder):
        pytest.skip("chattr +i is not supported on this file system")
    try:
        err = translate(busy, folder)
        assert err is not None and str(err).startswith(f"the index folder {folder} is not writable")
    finally:
        _mutable(folder)


def test_workspace_on_an_immutable_state_root_says_so(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    root = tmp_path / "state"
    root.mkdir()
    if not _immutable(root):
        pytest.skip("chattr +i is not supported on this file system")
    try:
        with pytest.raises(StateDirUnavailable) as got:
            Workspace(ws, Settings(state_dir=root))
        assert not isinstance(got.value, StateDirVanished) and "cannot be created" in str(got.value)
    finally:
        _mutable(root)


def test_a_read_only_open_of_a_never_indexed_folder_creates_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    root = tmp_path / "state"
    with pytest.raises(NotIndexed, match=f"{ws} is not indexed yet: run `forge-indexer index {ws}`"):
        Workspace(ws, Settings(state_dir=root), create=False)
    with pytest.raises(NotIndexed, match="--rev main"):
        Workspace(ws, Settings(state_dir=root), create=False, rev="main")
    assert not root.exists()
    with Workspace(ws, Settings(state_dir=root)):
        pass  # the ordinary open creates the folder (an index run fills it)
    assert state_dir_for(ws.resolve(), Settings(state_dir=root)).is_dir()
