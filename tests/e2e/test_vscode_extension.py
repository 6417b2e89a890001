"""The VS Code extension (extension/, manifest package.json): types, lint, unit tests
against a stub of the `vscode` API, a wire test against the real server, the shipped bundle
activated against the real server, and the .vsix.

Each step is one npm script (see package.json); a failure shows npm's output. `npm ci`
runs first when node_modules is missing or older than package-lock.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO

NPM = shutil.which("npm")
VSIX = REPO / "forge-indexer-0.1.0.vsix"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["FORGE_INDEXER_PYTHON"] = sys.executable
    server = Path(sys.executable).with_name("forge-indexer")
    if server.exists():
        env["FORGE_INDEXER_SERVER"] = str(server)
    env.setdefault("npm_config_update_notifier", "false")
    return env


def _run(*args: str, timeout: int = 900) -> str:
    assert NPM is not None, "npm is needed for the VS Code extension tests (Node 20 and npm)"
    proc = subprocess.run(
        [NPM, *args], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, (
        f"npm {' '.join(args)} failed (exit {proc.returncode}):\n{out[-20000:]}"
    )
    return out


@pytest.fixture(scope="module", autouse=True)
def node_modules() -> None:
    """`npm ci` if node_modules is missing or stale (package-lock.json changed since)."""
    stamp = REPO / "node_modules" / ".package-lock.json"
    lock = REPO / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        _run("ci", "--no-audit", "--no-fund", timeout=1200)


def test_settings_mirror_matches_python_model() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "extension/scripts/settings_mirror.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_typecheck_strict() -> None:
    _run("run", "typecheck")


def test_eslint_clean() -> None:
    _run("run", "lint")


def test_unit_tests_against_vscode_stub() -> None:
    out = _run("run", "test:unit")
    assert re.search(r"\bfail 0\b", out), out[-5000:]


def test_wire_with_real_server() -> None:
    out = _run("run", "test:wire", timeout=1200)
    assert re.search(r"\bfail 0\b", out), out[-5000:]


def test_shipped_bundle_activates_against_real_server() -> None:
    """The minified bundle the .vsix ships, activated (vscode stubbed): the real server
    initializes, indexes the fixture, and the Search command finds and opens the right file."""
    out = _run("run", "test:activation", timeout=1200)
    assert re.search(r"\bpass 1\b", out) and re.search(r"\bfail 0\b", out), out[-5000:]


def test_vsix_builds_and_holds_only_what_users_need(
    record_property: Callable[[str, object], None],
) -> None:
    VSIX.unlink(missing_ok=True)
    _run("run", "package")
    out = _run("run", "check:vsix")
    with zipfile.ZipFile(VSIX) as z:
        names = z.namelist()
        manifest = json.loads(z.read("extension/package.json"))
    assert manifest["main"] == "./extension/dist/extension.js"
    assert "extension/extension/dist/extension.js" in names
    assert not [n for n in names if "node_modules" in n]
    size = VSIX.stat().st_size
    record_property("vsix_bytes", size)
    print(f"\n{VSIX.name}: {size / 1024:.1f} KiB, {len(names)} files\n{out}")
