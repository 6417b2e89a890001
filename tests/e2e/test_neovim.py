"""A real editor: headless Neovim 0.7 attaches to the server and queries it with request_sync."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import REPO, copy_workspace

pytestmark = pytest.mark.slow

NVIM = shutil.which("nvim")
SCRIPT = Path(__file__).with_name("nvim_client.lua")
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
