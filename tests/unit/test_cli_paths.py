"""`context --file` and `explain PATH` resolve a file one way: relative to the current folder
inside the workspace, else to the workspace; and a file the index does not hold is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.core.errors import ForgeError
from server.cli_paths import check_context_file, workspace_file


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "ws/src/pkg").mkdir(parents=True)
    (tmp_path / "ws/src/pkg/a.py").write_text("x = 1\n")
    (tmp_path / "ws/a.py").write_text("y = 2\n")
    (tmp_path / "ws/top.py").write_text("z = 3\n")
    return (tmp_path / "ws").resolve()


def test_relative_to_the_current_folder_inside_the_workspace(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(root / "src/pkg")
    assert workspace_file(root, "a.py") == "src/pkg/a.py"
    assert workspace_file(root, "./a.py") == "src/pkg/a.py"
    assert workspace_file(root, "../pkg/a.py") == "src/pkg/a.py"
    # No such file here, one in the workspace: the workspace's (as `search --path` globs are).
    assert workspace_file(root, "top.py") == "top.py"
    assert workspace_file(root, "src/pkg/a.py") == "src/pkg/a.py"
    # Neither: named where the user is (the error then says it does not exist there).
    assert workspace_file(root, "new.py") == "src/pkg/new.py"


def test_outside_the_workspace_the_name_is_the_workspace_s(root: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert workspace_file(root, "a.py") == "a.py"
    assert workspace_file(root, str(root / "src/pkg/a.py")) == "src/pkg/a.py"
    with pytest.raises(ForgeError, match="is not inside the workspace"):
        workspace_file(root, "/etc/passwd")
    with pytest.raises(ForgeError, match="is not inside the workspace"):
        workspace_file(root, "../elsewhere.py")


def test_a_file_the_index_does_not_hold_is_an_error(root: Path) -> None:
    with pytest.raises(ForgeError, match=r"^gone\.py does not exist in "):
        check_context_file(root, "gone.py", {"snippets": [], "file_indexed": False})
    with pytest.raises(ForgeError, match=r"^top\.py is not in the index of .*forge-indexer explain"):
        check_context_file(root, "top.py", {"snippets": [], "file_indexed": False})
    data = {"snippets": [], "file_indexed": True}
    check_context_file(root, "top.py", data)
    assert "file_indexed" not in data  # never printed (--json stays as it was)
    check_context_file(root, "top.py", {"snippets": []})  # an older daemon: no flag, no check
