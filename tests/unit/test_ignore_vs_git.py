"""Differential test: our ignore decisions against real git on random trees and patterns.

Each case builds a small tree with random `.gitignore` files (any depth) and a random
`.git/info/exclude`, asks `git ls-files --others --exclude-standard` which files git
considers not ignored, and compares with what `discover` finds (built-in defaults off,
since git has none). Seeded, so a failure is reproducible; skipped if git is missing.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from indexer.core.settings import Settings
from indexer.files.discover import IgnoreRules, discover

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

NAMES = ["a", "b", "c", "d.py", "e.txt", "f.log", "x"]
PATTERNS = [
    "a",
    "a/",
    "/a",
    "/a/",
    "b",
    "b/",
    "c",
    "*.py",
    "*.log",
    "!*.py",
    "!d.py",
    "!a",
    "!a/",
    "!b/",
    "a/**",
    "**/b",
    "a/**/c",
    "**/c/",
    "*",
    "!*/",
    "b/*",
    "!b/c",
    "/a/b",
    "[ab]",
    "?.txt",
    "**/",
    "!/a/",
    "c/*.py",
    "!c/",
    "x/",
    "!x",
    "e.*",
    "**/a/*",
    "!**/d.py",
    "a/b/",
    "/*",
    "!/b",
    "a*",
    "!c/d.py",
    "\\!x",
    "# comment",
    "",
    "b/**/x",
    "*/",
    "a/*/c",
    "**/*.py",
    "[!a]",
    "a?",
    "/**/b",
    "d.py/",
    "!**/",
    "x ",
    "\\#x",
    "*.[pl]*",
]
CASES = 60


def _tree(rng: random.Random, root: Path, depth: int = 0) -> list[Path]:
    """A random tree of files and dirs; returns the directories created."""
    dirs = [root]
    for name in rng.sample(NAMES, rng.randint(2, len(NAMES))):
        p = root / name
        if depth < 3 and "." not in name and rng.random() < 0.55:
            p.mkdir()
            dirs += _tree(rng, p, depth + 1)
        else:
            p.write_text(name + "\n")
    return dirs


def _git_unignored(root: Path) -> set[str]:
    out = subprocess.run(
        [
            "git",
            "-c",
            "core.excludesFile=/dev/null",
            "ls-files",
            "--others",
            "--exclude-standard",
            "-z",
        ],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return {p for p in out.split("\0") if p}


def _ours(root: Path) -> set[str]:
    rules = IgnoreRules.load(root, Settings(), defaults=False)
    found = discover(root, Settings(), rules)
    assert not found.errors
    return {f.path for f in found.files} | {s.path for s in found.skipped}


@pytest.mark.parametrize("seed", range(CASES))
def test_same_as_git(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root = tmp_path / "ws"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    dirs = _tree(rng, root)
    for d in rng.sample(dirs, min(len(dirs), rng.randint(1, 4))):
        lines = rng.sample(PATTERNS, rng.randint(1, 6))
        (d / ".gitignore").write_text("\n".join(lines) + "\n")
    if rng.random() < 0.5:
        (root / ".git" / "info").mkdir(exist_ok=True)
        (root / ".git" / "info" / "exclude").write_text("\n".join(rng.sample(PATTERNS, 3)) + "\n")
    expected = _git_unignored(root)
    assert _ours(root) == expected, [
        (str(p.relative_to(root)), p.read_text()) for p in sorted(root.rglob(".gitignore"))
    ]
