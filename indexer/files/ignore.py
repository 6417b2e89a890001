"""Which paths of a workspace are left out of the index: git's ignore rules, exactly.

Sources, from lowest to highest precedence (the first source, counted from the highest,
whose patterns match a path decides; inside one file the last matching line wins):

1. built-in defaults (`DEFAULT_EXCLUDES`: VCS metadata, dependency and build output
   folders, tool caches, editor folders);
2. `.git/info/exclude` of the workspace's repository (and of nested repositories,
   for their own subtree);
3. `.gitignore` files at any depth, each relative to its own directory, a deeper file
   overriding a shallower one (git's own order);
4. `.forgeignore` files (same syntax, any depth, same order), so a project can leave
   out more than git does, or index something git ignores (`!generated/`);
5. `settings.exclude` globs (gitignore syntax, relative to the workspace root).

So a `!` line in `.forgeignore` or `settings.exclude` re-includes a built-in default
(`!build/`), and git's rule still holds across all sources: nothing inside an excluded
directory can be re-included (`!node_modules/foo/` does nothing while `node_modules/` is
excluded; re-include the folder itself instead). The `.git` directory is never indexed,
whatever the rules say. Works the same in folders that are not git repositories.

Pattern text is compiled by pathspec's gitignore implementation (git's wildmatch). The
per-directory evaluation is done here, the way git does it: every directory on the way
down is decided on its own before anything below it, and a pattern counts only when it
matches the path itself. pathspec's `GitIgnoreSpec` answers for whole file paths of one
pattern list, which cannot express "a deeper .gitignore overrides a shallower one" and
misjudges directories queried on their own (`*` then `!*/` excludes `src/` there).
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pathspec.patterns.gitignore.base import GitIgnorePatternError
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from indexer.core.settings import Settings

log = logging.getLogger(__name__)

GITIGNORE = ".gitignore"
FORGEIGNORE = ".forgeignore"
GIT_DIR = ".git"

# Left out even without any ignore file: what nobody wants in a code search. `.vscode/`
# is in (editor settings, not code; `!.vscode/` in .forgeignore brings it back), and so
# are `build/`, `dist/` and `target/` at any depth: build output far more often than
# source. `.git/` is listed for completeness; it is skipped unconditionally anyway.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git/",
    ".hg/",
    ".svn/",
    "node_modules/",
    "__pycache__/",
    ".venv/",
    "venv/",
    ".tox/",
    ".nox/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".hypothesis/",
    "*.egg-info/",
    "dist/",
    "build/",
    "target/",
    ".idea/",
    ".vscode/",
    ".DS_Store",
)

# pathspec ends every segment-matching regex with `(?:(?P<ps_d>/)|$)`: the group is set
# when the pattern matched a parent directory of the queried path rather than the path
# itself. Git decides each directory level separately, so only the latter counts here.
# (Pinned by tests/unit/test_ignore.py::test_pathspec_dir_group_still_exists.)
_PATHSPEC_DIR_GROUP = "ps_d"
_GLOB_CHARS = frozenset("*?[\\")


@dataclass(frozen=True, slots=True)
class _Rule:
    """One pattern line.

    `dir_only` patterns (`logs/`) are compiled without their trailing slash and only
    tried on directories: pathspec's form for them needs a path below the directory,
    which would make "the directory itself" impossible to tell from "something inside".
    """

    negate: bool
    dir_only: bool
    literal: str | None  # `name`: matches when the basename equals it (fast path)
    suffix: str | None  # `*.ext`: matches when the basename ends with it (fast path)
    regex: re.Pattern[str] | None  # everything else
    has_dir_group: bool

    def matches(self, rel: str, name: str) -> bool:
        if self.literal is not None:
            return name == self.literal
        if self.suffix is not None:
            return name.endswith(self.suffix)
        assert self.regex is not None
        m = self.regex.search(rel)
        return m is not None and not (self.has_dir_group and m.group(_PATHSPEC_DIR_GROUP) is not None)


def _compile_line(raw: str) -> _Rule | None:
    """Turn one ignore-file line into a rule; None for blanks, comments and invalid lines."""
    line = raw.rstrip("\r")
    if not line.endswith("\\ "):  # git keeps an escaped trailing space
        line = line.rstrip()
    if not line or line.startswith("#"):
        return None
    negate = line.startswith("!")
    body = line[1:] if negate else line
    dir_only = False
    while len(body) > 1 and body.endswith("/"):
        dir_only = True
        body = body[:-1]
    if not body or body == "/":
        return None
    literal = suffix = None
    regex = None
    if "/" not in body and not (_GLOB_CHARS & set(body)):
        literal = body
    elif body.startswith("*") and "/" not in body and not (_GLOB_CHARS & set(body[1:])):
        suffix = body[1:]
    else:
        try:
            compiled = GitIgnoreSpecPattern(("!" if negate else "") + body)
        except GitIgnorePatternError:
            log.debug("ignoring invalid ignore pattern %r", raw)
            return None
        if compiled.include is None or compiled.regex is None:
            return None
        regex = compiled.regex
    return _Rule(
        negate=negate,
        dir_only=dir_only,
        literal=literal,
        suffix=suffix,
        regex=regex,
        has_dir_group=regex is not None and _PATHSPEC_DIR_GROUP in regex.groupindex,
    )


@dataclass(frozen=True, slots=True)
class _RuleList:
    """The patterns of one source, relative to directory `base` ("" = workspace root)."""

    base: str
    rules: tuple[_Rule, ...]
    origin: str  # for logs: which file (or "defaults", "settings.exclude")

    @classmethod
    def parse(cls, base: str, lines: Iterable[str], origin: str) -> _RuleList | None:
        rules = tuple(r for r in (_compile_line(x) for x in lines) if r is not None)
        return cls(base, rules, origin) if rules else None

    def decide(self, path: str, is_dir: bool) -> bool | None:
        """True: excluded, False: re-included by a `!` line, None: no line matches."""
        rel = path[len(self.base) + 1 :] if self.base else path
        name = rel.rpartition("/")[2]
        for rule in reversed(self.rules):
            if (is_dir or not rule.dir_only) and rule.matches(rel, name):
                return not rule.negate
        return None


@dataclass(slots=True)
class _DirRules:
    """The ignore files found in one directory, with the stat data they were read at."""

    gitignore: _RuleList | None
    forgeignore: _RuleList | None
    exclude: _RuleList | None  # info/exclude when this directory is a repository root
    signature: tuple[object, ...]


_Chain = tuple[_RuleList, ...]


def _file_signature(path: str) -> tuple[int, int, int] | None:
    """Identity of an ignore file for change detection; None if it is not a readable regular file."""
    try:
        st = os.lstat(path)  # git does not follow a symlinked .gitignore either
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _git_exclude_file(git_entry: str) -> str | None:
    """Path of info/exclude for a `.git` directory, or for a `.git` file (worktree, submodule).

    None when there is no `.git` here (the common case for subdirectories).
    """
    try:
        st = os.lstat(git_entry)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return os.path.join(git_entry, "info", "exclude")
    if not stat.S_ISREG(st.st_mode):
        return None
    try:
        with open(git_entry, encoding="utf-8", errors="surrogateescape") as fh:
            first = fh.readline().strip()
    except OSError:
        return None
    if not first.startswith("gitdir:"):
        return None
    gitdir = os.path.join(os.path.dirname(git_entry), first[len("gitdir:") :].strip())
    common = gitdir
    try:  # a linked worktree shares info/exclude with the main repository
        with open(os.path.join(gitdir, "commondir"), encoding="utf-8") as fh:
            common = os.path.join(gitdir, fh.read().strip())
    except OSError:
        pass
    return os.path.join(common, "info", "exclude")


class IgnoreRules:
    """All ignore rules of one workspace; per-directory files are read on first need.

    Thread-safe for the way it is used (one scan plus watcher lookups): caches are only
    ever filled or replaced whole. Call `load` again when `is_rule_file` says a changed
    path was a rule file; `discover` also notices edited ignore files on its own.
    """

    def __init__(
        self,
        root: Path,
        settings: Settings,
        *,
        defaults: bool = True,
        reader: Callable[[str], str | None] | None = None,
    ) -> None:
        """`reader(rel_path)` supplies ignore files from elsewhere than the disk (a git
        tree: `indexer.files.gitrev`); it returns a file's text, or None when there is none.
        With a reader, `.git/info/exclude` is not read: it belongs to a checkout."""
        self.root = root
        self._root_str = str(root)
        self._reader = reader
        self._defaults = (
            _RuleList.parse("", DEFAULT_EXCLUDES, "built-in defaults") if defaults else None
        )
        self._settings_rules = _RuleList.parse("", settings.exclude, "settings.exclude")
        self._dirs: dict[str, _DirRules] = {}
        self._chains: dict[str, _Chain] = {}
        self._dir_ignored: dict[str, bool] = {}
        self.problems: dict[str, str] = {}  # rule file rel path -> why it could not be read

    @classmethod
    def load(
        cls,
        root: Path,
        settings: Settings,
        *,
        defaults: bool = True,
        reader: Callable[[str], str | None] | None = None,
    ) -> IgnoreRules:
        """Rules for `root`. `defaults=False` leaves out `DEFAULT_EXCLUDES` (tests, tools);
        `reader` reads the ignore files from a git tree instead of the disk."""
        rules = cls(root, settings, defaults=defaults, reader=reader)
        rules._dir_rules("")  # read the root's files now: cheap, and errors show up early
        return rules

    # -- public queries -----------------------------------------------------------------
    def is_ignored(self, rel_path: str, is_dir: bool) -> bool:
        """Whether `rel_path` (POSIX, relative to the root) is excluded, parents included."""
        rel = _normalise(rel_path)
        if rel is None:
            return True  # outside the workspace: never ours to index
        if rel == "":
            return False
        parent, _, _ = rel.rpartition("/")
        if parent and self.dir_is_ignored(parent):
            return True
        return self.decide(rel, parent, is_dir)

    def is_rule_file(self, rel_path: str) -> bool:
        """True for `.gitignore`, `.forgeignore` and `.git/info/exclude` (any directory)."""
        rel = _normalise(rel_path)
        if not rel:
            return False
        name = rel.rpartition("/")[2]
        if name in (GITIGNORE, FORGEIGNORE):
            return GIT_DIR not in rel.split("/")
        return rel == ".git/info/exclude" or rel.endswith("/.git/info/exclude")

    # -- used by discover ---------------------------------------------------------------
    def dir_is_ignored(self, rel_dir: str) -> bool:
        """Whether directory `rel_dir` or any directory above it is excluded (cached)."""
        cached = self._dir_ignored.get(rel_dir)
        if cached is not None:
            return cached
        parent, _, name = rel_dir.rpartition("/")
        result = (
            name == GIT_DIR
            or (bool(parent) and self.dir_is_ignored(parent))
            or self.decide(rel_dir, parent, True)
        )
        self._dir_ignored[rel_dir] = result
        return result

    def decide(self, rel: str, parent: str, is_dir: bool) -> bool:
        """Whether `rel`, an entry of the non-excluded directory `parent`, is excluded."""
        if rel.rpartition("/")[2] == GIT_DIR:
            return True
        for rule_list in self._chain(parent):
            verdict = rule_list.decide(rel, is_dir)
            if verdict is not None:
                return verdict
        return False

    def refresh_dir(self, rel_dir: str, names: set[str] | frozenset[str]) -> None:
        """Re-read a directory's ignore files if they changed since they were read.

        `names` are the directory's entry names (the scan has them), so a directory
        without ignore files costs no system call.
        """
        cached = self._dirs.get(rel_dir)
        if cached is None or self._reader is not None:
            self._dir_rules(rel_dir, names)
            return
        if self._signature(rel_dir, names) != cached.signature:
            self._dirs.pop(rel_dir, None)
            self._chains.clear()
            self._dir_ignored.clear()
            self._dir_rules(rel_dir, names)

    # -- internals ----------------------------------------------------------------------
    def _abs(self, rel: str) -> str:
        return os.path.join(self._root_str, rel) if rel else self._root_str

    def _signature(self, rel_dir: str, names: set[str] | frozenset[str] | None) -> tuple[object, ...]:
        base = self._abs(rel_dir)
        sig: list[object] = []
        for name in (GITIGNORE, FORGEIGNORE):
            present = names is None or name in names
            sig.append(_file_signature(os.path.join(base, name)) if present else None)
        exclude = None
        if names is None or GIT_DIR in names:
            exclude = _git_exclude_file(os.path.join(base, GIT_DIR))
        sig.append(None if exclude is None else (exclude, _file_signature(exclude)))
        return tuple(sig)

    def _read_list(self, rel_dir: str, path: str, label: str) -> _RuleList | None:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                text = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.problems[label] = f"cannot read ignore file: {exc.strerror or exc}"
            log.warning("%s: %s", label, self.problems[label])
            return None
        self.problems.pop(label, None)
        return _RuleList.parse(rel_dir, text.split("\n"), label)

    def _dir_rules(self, rel_dir: str, names: set[str] | frozenset[str] | None = None) -> _DirRules:
        cached = self._dirs.get(rel_dir)
        if cached is not None:
            return cached
        if self._reader is not None:
            return self._tree_rules(rel_dir)
        signature = self._signature(rel_dir, names)
        base = self._abs(rel_dir)
        prefix = rel_dir + "/" if rel_dir else ""
        git_sig, forge_sig, exclude_sig = signature
        gitignore = (
            self._read_list(rel_dir, os.path.join(base, GITIGNORE), prefix + GITIGNORE) if git_sig else None
        )
        forgeignore = (
            self._read_list(rel_dir, os.path.join(base, FORGEIGNORE), prefix + FORGEIGNORE)
            if forge_sig
            else None
        )
        exclude = None
        if isinstance(exclude_sig, tuple) and exclude_sig[0] and exclude_sig[1]:
            exclude = self._read_list(rel_dir, str(exclude_sig[0]), prefix + ".git/info/exclude")
        rules = _DirRules(gitignore, forgeignore, exclude, signature)
        self._dirs[rel_dir] = rules
        return rules

    def _tree_rules(self, rel_dir: str) -> _DirRules:
        """A directory's ignore files as `reader` has them (they never change)."""
        assert self._reader is not None
        prefix = rel_dir + "/" if rel_dir else ""
        found = []
        for name in (GITIGNORE, FORGEIGNORE):
            text = self._reader(prefix + name)
            found.append(None if text is None else _RuleList.parse(rel_dir, text.split("\n"), prefix + name))
        rules = _DirRules(found[0], found[1], None, ())
        self._dirs[rel_dir] = rules
        return rules

    def _chain(self, rel_dir: str) -> _Chain:
        """Rule lists that apply to entries of `rel_dir`, highest precedence first."""
        chain = self._chains.get(rel_dir)
        if chain is not None:
            return chain
        forge: list[_RuleList] = []
        git: list[_RuleList] = []
        exclude: list[_RuleList] = []
        d: str | None = rel_dir
        while d is not None:
            rules = self._dir_rules(d)
            if rules.forgeignore:
                forge.append(rules.forgeignore)
            if rules.gitignore:
                git.append(rules.gitignore)
            if rules.exclude:
                exclude.append(rules.exclude)
            d = d.rpartition("/")[0] if d else None
        head = [self._settings_rules] if self._settings_rules else []
        tail = [self._defaults] if self._defaults else []
        chain = tuple(head + forge + git + exclude + tail)
        self._chains[rel_dir] = chain
        return chain


def _normalise(rel_path: str) -> str | None:
    """POSIX relative path without `.`/`..`/trailing slash; None if it leaves the root."""
    rel = rel_path.replace(os.sep, "/") if os.sep != "/" else rel_path
    if rel.startswith("/"):
        return None
    rel = posixpath.normpath(rel) if rel else "."
    if rel == ".":
        return ""
    if rel == ".." or rel.startswith("../"):
        return None
    return rel
