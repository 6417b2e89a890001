"""Index a git revision from the repository's objects, without checking it out.

`RevisionSource` is a `FileSource` for the pipeline: it resolves a ref to a commit
(`git rev-parse --verify REF^{commit}`), lists the tree of the workspace folder in that
commit (`git ls-tree -r -z --long`) and reads blobs through one long-lived
`git cat-file --batch` process. The working tree and the index file are never touched,
so CI can keep a team index of `main` from any checkout.

The same rules as a working-tree scan apply: the `.gitignore` and `.forgeignore` files
*as they are in that commit* (read from the tree through `IgnoreRules`' reader), the
built-in defaults and `settings.exclude`; secret-looking names, lock files, binary
extensions and the size limit (from the tree listing, before any read); binary,
undecodable, generated or minified content (`check_content`, after the read). Symlinks
are skipped with a reason (a revision has no real path to index them at), and so are
submodules (gitlinks: their files live in another repository). `.git/info/exclude` is
not read: it belongs to one checkout, not to the revision.

The blob id is the change marker (`SourceFile.mtime_ns` carries its first 60 bits), so
re-indexing after the ref moved reads only blobs whose id changed.

Safety: git runs from a fixed environment (no system config, no pager, no prompts,
no replace objects, no lazy fetch, no transport), with `core.fsmonitor=false` and
`core.hooksPath=/dev/null` on the command line, and never through a shell. Only
plumbing that reads objects runs: `rev-parse`, `ls-tree` and `cat-file --batch`
(without `--textconv`/`--filters`); none of them starts `core.fsmonitor`, `diff.external`,
textconv or filter drivers, hooks or a pager, so a repository's own `.git/config`
cannot make them run a program.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import TracebackType

from indexer.core.errors import ForgeError
from indexer.core.settings import Settings
from indexer.core.types import FileError, Skipped, SourceFile
from indexer.files.discover import (
    Discovery,
    IgnoreRules,
    LoadedSource,
    check_content,
    name_size_reason,
)

log = logging.getLogger(__name__)

GIT_TIMEOUT_S = 120
#: Bits of the blob id kept as the change marker (fits SQLite's signed 64-bit integer).
_MARKER_HEX = 15
_REGULAR_MODES = frozenset({b"100644", b"100755", b"100664"})
_SYMLINK_MODE = b"120000"
_GITLINK_MODE = b"160000"
_IGNORE_FILES = (".gitignore", ".forgeignore")
# Environment variables passed through to git; everything else (GIT_DIR, GIT_WORK_TREE,
# GIT_CONFIG_PARAMETERS, GIT_EXTERNAL_DIFF, ...) is left out so nothing inherited steers it.
_PASS_ENV = ("PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "SYSTEMROOT", "XDG_CONFIG_HOME")
_SAFE_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_NO_REPLACE_OBJECTS": "1",
    "GIT_NO_LAZY_FETCH": "1",  # git >= 2.45; older gits are stopped by protocol.allow below
    "LC_ALL": "C",
}
_SAFE_CONFIG = (
    "-c", "core.fsmonitor=false",
    "-c", "core.hooksPath=/dev/null",
    "-c", "protocol.allow=never",  # a partial clone's missing blob must not start a fetch
    "-c", "core.untrackedCache=false",
)


class GitRevisionError(ForgeError):
    """`--rev` cannot be served: no git, not a repository, unknown revision."""


def safe_ref_name(ref: str) -> str:
    """A ref as a folder-name suffix: `origin/main` -> `origin_main-<hash>` (collision-free)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", ref)[:60] or "ref"
    if safe == ref:
        return safe
    return f"{safe}-{hashlib.sha1(ref.encode()).hexdigest()[:8]}"


def git_env() -> dict[str, str]:
    """The fixed environment git runs in."""
    env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
    env.update(_SAFE_ENV)
    return env


def _git() -> str:
    exe = shutil.which("git")
    if exe is None:
        raise GitRevisionError(
            "git is not installed (or not on PATH), and --rev reads the repository with it: "
            "install git (e.g. `apt-get install git`), or leave out --rev."
        )
    return exe


def _command(git: str, *args: str) -> list[str]:
    return [git, "--no-pager", "--no-replace-objects", *_SAFE_CONFIG, *args]


def _run(git: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            _command(git, *args), cwd=cwd, env=git_env(), stdin=subprocess.DEVNULL,
            capture_output=True, timeout=GIT_TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitRevisionError(
            f"git {args[0]} did not answer within {GIT_TIMEOUT_S} s in {cwd}: check the repository "
            "(`git fsck`), then try again."
        ) from None
    except OSError as exc:
        raise GitRevisionError(f"cannot run git ({exc.strerror or exc}): check the git installation.") from None


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else ""


class _BlobReader:
    """One `git cat-file --batch` process: blob id in, raw content out (no filters)."""

    def __init__(self, git: str, cwd: Path) -> None:
        self._proc = subprocess.Popen(
            _command(git, "cat-file", "--batch"), cwd=cwd, env=git_env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )

    def read(self, sha: str) -> bytes | None:
        """The blob's bytes; None if the object is missing (a shallow or partial clone)."""
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(sha.encode() + b"\n")
        proc.stdin.flush()
        header = proc.stdout.readline()
        parts = header.split()
        if len(parts) != 3:
            if header.endswith(b"missing\n"):
                return None
            raise GitRevisionError(
                f"git cat-file stopped answering ({_first_line(header) or 'no output'}): "
                "check the repository (`git fsck`), then try again."
            )
        size = int(parts[2])
        data = proc.stdout.read(size)
        proc.stdout.read(1)  # the newline after the content
        return data

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class RevisionSource:
    """The files of workspace folder `root` as they are in git revision `ref`.

    A context manager: `close()` stops the `cat-file` process.
    """

    def __init__(self, root: Path, ref: str, settings: Settings) -> None:
        self.root = root
        self.ref = ref
        self.settings = settings
        self._git = _git()
        if not ref or ref.startswith("-") or "\0" in ref or "\n" in ref:
            raise GitRevisionError(f"{ref!r} is not a revision name: give a branch, tag or commit, e.g. --rev main.")
        top = _run(self._git, root, "rev-parse", "--show-prefix")
        if top.returncode != 0:
            why = _first_line(top.stderr)
            if "not a git repository" in why.lower():
                raise GitRevisionError(
                    f"{root} is not inside a git repository, and --rev reads a revision from one: "
                    "run it in a clone (or leave out --rev to index the folder as it is)."
                )
            raise GitRevisionError(f"git cannot read the repository of {root}: {why}")
        self.prefix = top.stdout.decode("utf-8", "surrogateescape").strip()
        got = _run(self._git, root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if got.returncode != 0:
            raise GitRevisionError(
                f"unknown revision {ref!r} in the repository of {root}: check the name "
                f"(`git branch -a`, `git tag`), or fetch it first (`git fetch origin {ref}`)."
            )
        self.commit = got.stdout.decode().strip()
        tree = _run(self._git, root, "rev-parse", "--verify", "--quiet", f"{self.commit}:{self.prefix}")
        if tree.returncode != 0:
            raise GitRevisionError(
                f"the folder {self.prefix.rstrip('/')!r} does not exist in {ref} ({self.commit[:12]}): "
                "give a revision that has it, or index the repository's top folder."
            )
        self.tree = tree.stdout.decode().strip()
        self._blobs: dict[str, str] = {}  # rel path -> blob id, for every regular file listed
        self._reader: _BlobReader | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def __enter__(self) -> RevisionSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _read(self, sha: str) -> bytes | None:
        if self._reader is None:
            self._reader = _BlobReader(self._git, self.root)
        return self._reader.read(sha)

    def _read_text(self, rel: str) -> str | None:
        """An ignore file's text in the revision (None if there is none)."""
        sha = self._blobs.get(rel)
        if sha is None:
            return None
        data = self._read(sha)
        return None if data is None else data.decode("utf-8", "surrogateescape")

    # -- FileSource -----------------------------------------------------------------------
    def _list(self) -> list[tuple[bytes, str, str, int | None]]:
        """(mode, blob id, path, size) of every entry of the tree, recursively."""
        got = _run(self._git, self.root, "ls-tree", "--full-tree", "-r", "-z", "--long", self.tree)
        if got.returncode != 0:
            raise GitRevisionError(f"git cannot list {self.ref} ({self.commit[:12]}): {_first_line(got.stderr)}")
        out: list[tuple[bytes, str, str, int | None]] = []
        for record in got.stdout.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, _kind, sha, size = meta.split()
            path = raw_path.decode("utf-8", "surrogateescape")
            out.append((mode, sha.decode(), path, int(size) if size.isdigit() else None))
        return out

    def discover(self) -> Discovery:
        """Sort the revision's files into indexable, skipped (with a reason) or error."""
        entries = self._list()
        self._blobs = {path: sha for mode, sha, path, _ in entries if mode in _REGULAR_MODES}
        rules = IgnoreRules.load(self.root, self.settings, reader=self._read_text)
        files: list[SourceFile] = []
        skipped: list[Skipped] = []
        for mode, sha, rel, size in entries:
            printable = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if printable != rel:
                if not rules.is_ignored(printable, False):
                    skipped.append(Skipped(printable, "file name is not valid UTF-8"))
                continue
            if mode == _GITLINK_MODE:
                if not rules.is_ignored(rel, True):
                    skipped.append(Skipped(rel, f"submodule (commit {sha[:12]}; its files are another repository's)"))
                continue
            if rules.is_ignored(rel, False):
                continue
            if mode == _SYMLINK_MODE:
                skipped.append(Skipped(rel, "symlink (not followed when indexing a git revision)"))
            elif mode not in _REGULAR_MODES or size is None:
                skipped.append(Skipped(rel, f"not a regular file (git mode {mode.decode()})"))
            else:
                reason = name_size_reason(rel, size, self.settings)
                if reason is not None:
                    skipped.append(reason)
                else:
                    files.append(SourceFile(
                        path=rel, abs_path=f"{self.commit}:{self.prefix}{rel}", size=size,
                        mtime_ns=int(sha[:_MARKER_HEX], 16),
                    ))
        files.sort(key=lambda f: f.path)
        skipped.sort(key=lambda s: s.path)
        return Discovery(files, skipped, [])

    def load(self, f: SourceFile) -> LoadedSource | Skipped | FileError:
        """The blob's content, checked like a file read from disk."""
        sha = self._blobs.get(f.path)
        if sha is None:
            return FileError(f.path, f"not in {self.ref} ({self.commit[:12]})")
        data = self._read(sha)
        if data is None:
            return FileError(f.path, f"blob {sha[:12]} is missing from the repository (a shallow or partial clone?)")
        return check_content(f.path, data)
