"""Ignore rules: git's semantics (nested files, negation, anchoring, dir-only, `**`,
info/exclude), then `.forgeignore`, `settings.exclude` and the built-in defaults."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

import indexer.files.discover as discover_mod
from indexer.core.settings import Settings
from indexer.files.discover import IgnoreRules, discover
from indexer.files.ignore import _PATHSPEC_DIR_GROUP


def make(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def found(root: Path, settings: Settings | None = None, *, defaults: bool = True) -> set[str]:
    """Every path discovery did not ignore (indexed or skipped for another reason)."""
    s = settings or Settings()
    d = discover(root, s, IgnoreRules.load(root, s, defaults=defaults))
    return {f.path for f in d.files} | {x.path for x in d.skipped}


def test_pathspec_dir_group_still_exists() -> None:
    """ignore.py relies on pathspec marking "matched a parent directory" with this group."""
    regex = GitIgnoreSpecPattern("a/b").regex
    assert regex is not None and _PATHSPEC_DIR_GROUP in regex.groupindex
    m = regex.search("a/b/c")
    assert m is not None and m.group(_PATHSPEC_DIR_GROUP) == "/"
    m = regex.search("a/b")
    assert m is not None and m.group(_PATHSPEC_DIR_GROUP) is None


def test_nested_gitignore_is_relative_to_its_directory(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".gitignore": "*.log\n",
            "a.log": "x",
            "m.py": "x",
            "sub/.gitignore": "/only_here.py\ngen/\nb/c.py\n",
            "sub/only_here.py": "x",
            "sub/deeper/only_here.py": "x",
            "sub/gen/x.py": "x",
            "sub/deeper/gen/x.py": "x",
            "gen/x.py": "x",
            "sub/b/c.py": "x",
            "b/c.py": "x",
            "sub/z.log": "x",
        },
    )
    assert found(tmp_path) == {
        ".gitignore",
        "m.py",
        "sub/.gitignore",
        "sub/deeper/only_here.py",
        "gen/x.py",
        "b/c.py",
    }


def test_negation_and_deeper_file_overrides(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".gitignore": "*.txt\n!keep.txt\n",
            "a.txt": "x",
            "keep.txt": "x",
            "sub/.gitignore": "!notes.txt\n",
            "sub/notes.txt": "x",
            "sub/other.txt": "x",
        },
    )
    assert found(tmp_path) == {".gitignore", "keep.txt", "sub/.gitignore", "sub/notes.txt"}


def test_file_in_excluded_directory_cannot_be_reincluded(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".gitignore": "logs/\n!logs/keep.py\nout/*\n!out/keep.py\n",
            "logs/keep.py": "x",
            "logs/.gitignore": "!keep.py\n",
            "out/keep.py": "x",
            "out/drop.py": "x",
        },
    )
    # `logs/` excludes the directory: nothing below it comes back. `out/*` only excludes
    # its entries, so `!out/keep.py` works (git's documented difference).
    assert found(tmp_path) == {".gitignore", "out/keep.py"}
    rules = IgnoreRules.load(tmp_path, Settings())
    assert rules.is_ignored("logs/keep.py", False)
    assert not rules.is_ignored("out/keep.py", False)


def test_anchoring(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".gitignore": "/out\ntmp\ndocs/*.txt\n",
            "out/a.py": "x",
            "src/out/a.py": "x",
            "tmp/a.py": "x",
            "src/tmp/a.py": "x",
            "docs/a.txt": "x",
            "src/docs/a.txt": "x",
            "docs/x/a.txt": "x",
        },
    )
    assert found(tmp_path) == {".gitignore", "src/out/a.py", "src/docs/a.txt", "docs/x/a.txt"}


def test_directory_only_patterns(tmp_path: Path) -> None:
    make(
        tmp_path,
        {".gitignore": "logs/\n", "logs/a.py": "x", "src/logs/b.py": "x", "src/x/logs": "a file"},
    )
    assert found(tmp_path) == {".gitignore", "src/x/logs"}


def test_double_star(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".gitignore": "a/**/z.py\n**/cache\nlib/**\n!lib/keep/\n",
            "a/z.py": "x",
            "a/b/c/z.py": "x",
            "a/b/y.py": "x",
            "x/cache/f.py": "x",
            "cache": "file",
            "lib/f.py": "x",
            "lib/keep/f.py": "x",
        },
    )
    # `lib/**` matches every path below lib directly, so re-including the directory
    # `lib/keep/` still leaves `lib/keep/f.py` excluded (checked against git 2.39).
    assert found(tmp_path) == {".gitignore", "a/b/y.py"}


def test_git_info_exclude(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".git/info/exclude": "secret/\n*.local\n",
            ".git/HEAD": "ref",
            "secret/a.py": "x",
            "b.local": "x",
            "c.py": "x",
            ".gitignore": "!b.local\n",
        },
    )
    # .gitignore outranks info/exclude, so `!b.local` re-includes it.
    assert found(tmp_path) == {".gitignore", "c.py", "b.local"}


def test_git_dir_always_skipped(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".git/config": "x",
            "sub/.git": "gitdir: ../.git/modules/sub\n",
            "sub/a.py": "x",
            ".forgeignore": "!.git/\n",
        },
    )
    assert found(tmp_path, Settings(exclude=["!.git"])) == {".forgeignore", "sub/a.py"}


def test_forgeignore_any_depth_and_outranks_gitignore(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".gitignore": "generated/\n",
            ".forgeignore": "!generated/\nfixtures/\n",
            "generated/api.py": "x",
            "fixtures/big.py": "x",
            "pkg/.forgeignore": "*.sql\n",
            "pkg/a.sql": "x",
            "b.sql": "x",
        },
    )
    assert found(tmp_path) == {
        ".gitignore",
        ".forgeignore",
        "generated/api.py",
        "pkg/.forgeignore",
        "b.sql",
    }


def test_settings_exclude_is_highest(tmp_path: Path) -> None:
    make(
        tmp_path,
        {".forgeignore": "!*.md\n", "a.md": "x", "docs/b.py": "x", "c.py": "x", "build/d.py": "x"},
    )
    s = Settings(exclude=["*.md", "docs/", "!build/"])
    assert found(tmp_path, s) == {".forgeignore", "c.py", "build/d.py"}


def test_default_excludes(tmp_path: Path) -> None:
    dirs = [
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "dist",
        "build",
        "target",
        ".idea",
        ".vscode",
        ".hg",
        ".svn",
        "pkg.egg-info",
    ]
    make(
        tmp_path,
        {f"{d}/f.py": "x" for d in dirs} | {f"src/{d}/f.py": "x" for d in dirs} | {"src/a.py": "x"},
    )
    assert found(tmp_path) == {"src/a.py"}
    # Off switch, for tools and the git comparison.
    assert len(found(tmp_path, defaults=False)) == 2 * len(dirs) + 1


def test_forgeignore_can_reinclude_a_default_folder_but_not_inside_it(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".forgeignore": "!build/\n!node_modules/lib/\n",
            "build/gen.py": "x",
            "node_modules/lib/x.js": "x",
        },
    )
    assert found(tmp_path) == {".forgeignore", "build/gen.py"}


def test_non_git_folder(tmp_path: Path) -> None:
    make(tmp_path, {"a/.gitignore": "*.tmp\n", "a/x.tmp": "x", "a/y.py": "x", "z.tmp": "x"})
    assert found(tmp_path) == {"a/.gitignore", "a/y.py", "z.tmp"}


@pytest.fixture
def scanned_dirs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every directory `discover` lists, recorded through its scandir indirection."""
    seen: list[str] = []
    real = os.scandir

    def spy(path: str) -> Iterator[os.DirEntry[str]]:
        seen.append(str(path))
        return real(path)

    monkeypatch.setattr(discover_mod, "_scandir", spy)
    yield seen


def test_ignored_directories_are_never_listed(tmp_path: Path, scanned_dirs: list[str]) -> None:
    for i in range(50):
        make(tmp_path, {f"node_modules/pkg{i}/deep/index.js": "x"})
    make(
        tmp_path,
        {"src/a.py": "x", ".gitignore": "out/\n", "out/x/y.py": "x", ".git/objects/ab/c": "x"},
    )
    assert found(tmp_path) == {"src/a.py", ".gitignore"}
    assert sorted(Path(p).relative_to(tmp_path).as_posix() for p in scanned_dirs) == [".", "src"]


def test_is_ignored_for_watcher_paths(tmp_path: Path) -> None:
    make(tmp_path, {".gitignore": "logs/\n*.tmp\n", "sub/.gitignore": "x.py\n"})
    rules = IgnoreRules.load(tmp_path, Settings())
    assert rules.is_ignored("logs", True) and not rules.is_ignored("logs", False)
    assert rules.is_ignored("logs/deep/a.py", False)
    assert rules.is_ignored("a.tmp", False) and rules.is_ignored("./src/b.tmp", False)
    assert rules.is_ignored("sub/x.py", False) and not rules.is_ignored("x.py", False)
    assert rules.is_ignored("node_modules/a/b.js", False)
    assert rules.is_ignored(".git/index", False)
    assert rules.is_ignored("../outside.py", False)
    assert not rules.is_ignored("src/a.py", False)
    assert not rules.is_ignored("", True)


def test_is_rule_file() -> None:
    rules = IgnoreRules(Path("/nonexistent"), Settings())
    for rel in [
        ".gitignore",
        "a/b/.gitignore",
        ".forgeignore",
        "x/.forgeignore",
        ".git/info/exclude",
        "vendor/lib/.git/info/exclude",
    ]:
        assert rules.is_rule_file(rel), rel
    for rel in ["gitignore", "a.gitignore", ".git/config", "src/exclude", ".gitattributes", ""]:
        assert not rules.is_rule_file(rel), rel


def test_edited_ignore_file_is_noticed_by_the_next_scan(tmp_path: Path) -> None:
    make(tmp_path, {"a.py": "x", "b.py": "x", "sub/c.py": "x"})
    s = Settings()
    rules = IgnoreRules.load(tmp_path, s)
    assert len(discover(tmp_path, s, rules).files) == 3
    make(tmp_path, {".gitignore": "a.py\n", "sub/.gitignore": "c.py\n"})
    # (The .gitignore files themselves are configuration: skipped, not indexed.)
    assert [f.path for f in discover(tmp_path, s, rules).files] == ["b.py"]
    (tmp_path / ".gitignore").unlink()
    assert rules.is_ignored("sub/c.py", False)
    assert "a.py" in {f.path for f in discover(tmp_path, s, rules).files}


def test_comments_blank_lines_crlf_and_escapes(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".gitignore": "# a.py\r\n\r\n\\#b.py\r\nc.py   \r\n\\!d.py\r\n",
            "a.py": "x",
            "#b.py": "x",
            "c.py": "x",
            "!d.py": "x",
        },
    )
    assert found(tmp_path) == {".gitignore", "a.py"}


def test_info_exclude_of_worktree_and_nested_repository(tmp_path: Path) -> None:
    main = make(
        tmp_path / "main",
        {".git/info/exclude": "*.local\n", ".git/worktrees/wt/commondir": "../..\n"},
    )
    ws = make(
        tmp_path / "wt",
        {
            ".git": f"gitdir: {main}/.git/worktrees/wt\n",
            "a.local": "x",
            "b.py": "x",
            "vendor/lib/.git/info/exclude": "gen/\n",
            "vendor/lib/gen/x.py": "x",
            "gen/y.py": "x",
        },
    )
    assert found(ws) == {"b.py", "gen/y.py"}
    rules = IgnoreRules.load(ws, Settings())
    assert rules.is_ignored("vendor/lib/gen/x.py", False) and not rules.is_ignored(
        "gen/y.py", False
    )
