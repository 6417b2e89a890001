"""Find the files of a workspace worth indexing, and read them safely.

`discover` walks the tree once with `os.scandir`, deciding every directory against the
ignore rules (`indexer.files.ignore`) before entering it, so ignored trees such as
`node_modules/` are never listed. Symlinks are never followed: a symlinked file or
directory inside the workspace is indexed at its real path only, and one that leaves
the workspace is not indexed at all. Everything passed over is reported, never fatal:
ignored paths silently, other files as `Skipped` (a reason a user can read) or
`FileError` (the OS said no). Checks that need only the name or `lstat` run here;
checks on the content (binary, UTF-8, minified, generated, a credential inside:
`indexer.files.secret_scan`) run in `load_source`, which reads each file once, for the
pipeline's hash and chunker. Files the user lists in `indexSecretFiles` pass both secret
checks (a user setting only: a workspace cannot ask for its reader's keys to be indexed).

All paths in results are POSIX and relative to the workspace root; output is sorted.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from pathspec import GitIgnoreSpec

from indexer.core.settings import Settings
from indexer.core.types import FileError, Skipped, SourceFile
from indexer.files import secret_scan
from indexer.files.ignore import DEFAULT_EXCLUDES, GIT_DIR, IgnoreRules

__all__ = [
    "DEFAULT_EXCLUDES",
    "Discovery",
    "FileSource",
    "IgnoreRules",
    "LoadedSource",
    "check_content",
    "check_path",
    "discover",
    "load_source",
    "name_size_reason",
    "secret_allowed",
    "stat_changes",
]

# Known by name, so never read. Lock files are generated, huge and say nothing about
# the code; a search hit in one is noise.
LOCK_FILES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb",
    "Cargo.lock", "poetry.lock", "uv.lock", "Pipfile.lock", "pdm.lock", "Gemfile.lock",
    "composer.lock", "go.sum", "flake.lock", "pubspec.lock", "mix.lock", "Podfile.lock",
    "packages.lock.json", "gradle.lockfile",
})
# Files that tell tools how to treat the code, not code: never search results.
METADATA_FILES = frozenset({
    ".gitignore", ".gitattributes", ".gitmodules", ".gitkeep", ".forgeignore", ".forge-indexer.toml",
    ".dockerignore", ".npmignore", ".prettierignore", ".eslintignore",
})
# Secret-bearing files and folders: an index is a copy of what it reads, so these are
# never read at all. (`.env.example` goes too: it is often a real `.env` renamed.)
SECRET_NAMES = frozenset({
    ".netrc", "_netrc", ".npmrc", ".pypirc", ".pgpass", "credentials", "credentials.json",
    "credentials.yml", "credentials.yaml", "secrets.json", "secrets.yml", "secrets.yaml",
    ".htpasswd", ".git-credentials", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519",
})
SECRET_PREFIXES = (".env", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519")
SECRET_EXTENSIONS = frozenset({".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".asc", ".gpg", ".kdbx"})
SECRET_FOLDERS = frozenset({".ssh", ".aws", ".gnupg", ".azure", ".kube", ".docker"})
BINARY_EXTENSIONS = frozenset({
    # images and documents
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".icns", ".webp", ".tif", ".tiff",
    ".psd", ".heic", ".avif", ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx",
    ".odt", ".ods", ".odp",
    # archives and packages
    ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".lz4", ".7z", ".rar", ".tar", ".jar",
    ".war", ".ear", ".whl", ".egg", ".apk", ".ipa", ".deb", ".rpm", ".msi", ".dmg", ".iso",
    # compiled code
    ".so", ".dylib", ".dll", ".exe", ".o", ".a", ".obj", ".lib", ".pyc", ".pyo", ".pyd",
    ".class", ".wasm", ".dex",
    # fonts and media
    ".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp3", ".mp4", ".m4a", ".wav", ".ogg",
    ".flac", ".avi", ".mov", ".mkv", ".webm",
    # data and model weights
    ".sqlite", ".sqlite3", ".db", ".bin", ".gguf", ".safetensors", ".pt", ".pth", ".onnx",
    ".npy", ".npz", ".pkl", ".pickle", ".h5", ".hdf5", ".parquet", ".arrow", ".tflite",
})
MINIFIED_SUFFIXES = (".min.js", ".min.mjs", ".min.cjs", ".min.css")
SOURCE_MAP_SUFFIX = ".map"

BINARY_SNIFF_BYTES = 8192
# Minified or generated-data heuristics: a line over LONG_LINE characters in a file
# whose average line is over AVERAGE_LINE, or any line over SINGLE_LINE (no hand-written
# code has one; a chunker would have to cut it mid-line).
LONG_LINE = 1000
AVERAGE_LINE = 200
SINGLE_LINE = 20_000
_LONG_LINE_RE = re.compile(rf"(?m)^[^\n]{{{LONG_LINE + 1}}}")
_SINGLE_LINE_RE = re.compile(rf"(?m)^[^\n]{{{SINGLE_LINE + 1}}}")
# Generated-file markers, looked for in comment lines at the top of a file only, so code
# that merely prints such a header (a code generator) is still indexed.
GENERATED_HEAD_LINES = 10
_COMMENT_LEAD = re.compile(r"""^\s*(?:#|//|/\*|\*|--|;|%|<!--|\{-|\(\*|"{3}|'{3}|rem\b)""", re.I)
_GENERATED_RE = re.compile(
    r"@generated\b|\bcode generated\b.*\bdo not edit\b|\bgenerated by\b.*\bdo not edit\b"
    r"|\bauto-?generated\b|\bautomatically generated\b",
    re.I,
)

_MiB = 1024 * 1024


@dataclass(frozen=True)
class Discovery:
    """What a scan found: files to index, files passed over, files that could not be read."""

    files: list[SourceFile]
    skipped: list[Skipped]
    errors: list[FileError]


@dataclass(frozen=True)
class LoadedSource:
    """A file's text (UTF-8, BOM removed) and the sha256 of its raw bytes."""

    text: str
    sha256: str


def human_size(n: int) -> str:
    """1048576 -> '1.0 MiB' (binary units, one decimal)."""
    if n >= _MiB:
        return f"{n / _MiB:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


# Indirections the tests replace to simulate what root cannot see (permission errors).
_scandir = os.scandir


def _open_for_read(path: str) -> int:
    """Open without following a symlink and without blocking on a FIFO swapped in late."""
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))


# -- per-entry classification -----------------------------------------------------------
def secret_reason(rel: str) -> str | None:
    """Why a path may hold credentials (so it is never read), or None."""
    parts = rel.split("/")
    folder = next((p for p in parts[:-1] if p in SECRET_FOLDERS), None)
    if folder is not None:
        return f"may hold secrets (inside {folder}/)"
    lower = parts[-1].lower()
    ext = os.path.splitext(lower)[1]
    if lower in SECRET_NAMES or lower.startswith(SECRET_PREFIXES) or ext in SECRET_EXTENSIONS:
        return f"may hold secrets ({parts[-1]})"
    return None


@lru_cache(maxsize=8)
def _allow_spec(patterns: tuple[str, ...]) -> GitIgnoreSpec:
    return GitIgnoreSpec.from_lines(patterns)


def secret_allowed(rel: str, settings: Settings) -> bool:
    """Whether the user asked for `rel` to be indexed although it looks like a secret."""
    patterns = settings.index_secret_files
    return bool(patterns) and _allow_spec(tuple(patterns)).match_file(rel)


def _name_reason(name: str) -> str | None:
    """Why a file is skipped from its name alone (no read), or None."""
    if name in LOCK_FILES:
        return "lock file"
    if name in METADATA_FILES:
        return "tool configuration, not code"
    lower = name.lower()
    ext = os.path.splitext(lower)[1]
    if ext in BINARY_EXTENSIONS:
        return f"binary file type ({ext})"
    if lower.endswith(MINIFIED_SUFFIXES):
        return f"minified file ({lower[lower.rindex('.min.'):]})"
    if lower.endswith(SOURCE_MAP_SUFFIX):
        return "source map (.map)"
    return None


def name_size_reason(rel: str, size: int, settings: Settings) -> Skipped | None:
    """Why a regular, non-ignored file is skipped from its path and size alone, or None."""
    secret = secret_reason(rel)
    if secret is not None and secret_allowed(rel, settings):
        secret = None
    reason = secret or _name_reason(rel.rpartition("/")[2])
    if reason is not None:
        return Skipped(rel, reason)
    limit = settings.max_file_bytes
    if size > limit:
        return Skipped(rel, f"larger than {human_size(limit)} ({human_size(size)})")
    if size == 0:
        return Skipped(rel, "empty file")
    return None


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def _utf8_name(name: str) -> bool:
    """False for names that were not valid UTF-8 on disk (Python keeps them as surrogates)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(rel: str) -> str:
    """A path that can go into JSON, SQLite and LSP messages (undecodable bytes as U+FFFD)."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _os_message(exc: OSError) -> str:
    return exc.strerror or str(exc)


class _Context:
    """What one scan or one `check_path` needs about the workspace."""

    def __init__(self, root: Path, settings: Settings, rules: IgnoreRules) -> None:
        self.root = str(root)
        real = os.path.realpath(root)
        self.root_real = real
        self.root_real_prefix = real if real.endswith(os.sep) else real + os.sep
        self.settings = settings
        self.rules = rules

    def classify_file(self, rel: str, abs_path: str, st: os.stat_result) -> SourceFile | Skipped:
        """A regular, non-ignored file: accept it or say why not (name and size only)."""
        skip = name_size_reason(rel, st.st_size, self.settings)
        if skip is not None:
            return skip
        return SourceFile(path=rel, abs_path=abs_path, size=st.st_size, mtime_ns=st.st_mtime_ns)

    def classify_symlink(self, rel: str, parent: str, abs_path: str) -> Skipped | FileError | None:
        """A symlink is never followed; say where it leads and why it is not indexed there.

        Git matches a symlink as a file. Here a symlink to a directory is also matched as
        a directory, so a `node_modules` or `build` symlink is ignored like the real
        folder would be (None) instead of being reported.
        """
        try:
            target = os.stat(abs_path)
        except FileNotFoundError:
            return Skipped(rel, "broken symlink")
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return Skipped(rel, "symlink loop")
            if exc.errno == errno.ENOTDIR:
                return Skipped(rel, "broken symlink")
            return FileError(rel, f"cannot follow symlink: {_os_message(exc)}")
        if stat.S_ISDIR(target.st_mode) and self.rules.decide(rel, parent, True):
            return None
        real = os.path.realpath(abs_path)
        if real != self.root_real and not real.startswith(self.root_real_prefix):
            return Skipped(rel, "symlink points outside the workspace")
        target_rel = Path(os.path.relpath(real, self.root_real)).as_posix()
        if self.rules.is_ignored(target_rel, stat.S_ISDIR(target.st_mode)):
            return Skipped(rel, f"symlink to {target_rel} (ignored there)")
        return Skipped(rel, f"symlink to {target_rel} (indexed at its real path)")


# -- the scan -----------------------------------------------------------------------------
def discover(root: Path, settings: Settings, rules: IgnoreRules | None = None) -> Discovery:
    """Walk `root` and sort every file into indexable, skipped (with a reason) or error."""
    if rules is None:
        rules = IgnoreRules.load(root, settings)
    ctx = _Context(root, settings, rules)
    files: list[SourceFile] = []
    skipped: list[Skipped] = []
    errors: list[FileError] = []
    stack: list[str] = [""]  # directories still to list, relative to root
    while stack:
        rel_dir = stack.pop()
        abs_dir = os.path.join(ctx.root, rel_dir) if rel_dir else ctx.root
        try:
            with _scandir(abs_dir) as it:
                entries = list(it)
        except OSError as exc:
            if rel_dir and isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                continue  # removed while we were walking: nothing to report
            errors.append(FileError(rel_dir or ".", f"cannot list directory: {_os_message(exc)}"))
            continue
        # Pick up ignore files that appeared or changed since the rules were loaded.
        rules.refresh_dir(rel_dir, frozenset(e.name for e in entries))
        prefix = rel_dir + "/" if rel_dir else ""
        for entry in entries:
            name = entry.name
            if name == GIT_DIR:
                continue
            rel = prefix + name
            if not _utf8_name(name):
                # Such a path cannot be stored or sent to an editor as text; say so once
                # (for a directory: once for everything below it).
                skipped.append(Skipped(_printable(rel), "file name is not valid UTF-8"))
                continue
            try:
                if entry.is_symlink():
                    if not rules.decide(rel, rel_dir, False):  # git matches a symlink as a file
                        _add(ctx.classify_symlink(rel, rel_dir, entry.path), skipped, errors)
                elif entry.is_dir(follow_symlinks=False):
                    if not rules.decide(rel, rel_dir, True):
                        stack.append(rel)
                elif not rules.decide(rel, rel_dir, False):
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISREG(st.st_mode):
                        res = ctx.classify_file(rel, entry.path, st)
                        if isinstance(res, SourceFile):
                            files.append(res)
                        else:
                            skipped.append(res)
                    else:
                        skipped.append(Skipped(rel, f"not a regular file ({_special_kind(st.st_mode)})"))
            except FileNotFoundError:
                continue  # deleted between listing and stat
            except OSError as exc:
                errors.append(FileError(rel, _os_message(exc)))
    for rel, problem in sorted(rules.problems.items()):
        errors.append(FileError(rel, problem))
    files.sort(key=lambda f: f.path)
    skipped.sort(key=lambda s: s.path)
    errors.sort(key=lambda e: e.path)
    return Discovery(files, skipped, errors)


def _add(res: Skipped | FileError | None, skipped: list[Skipped], errors: list[FileError]) -> None:
    if isinstance(res, Skipped):
        skipped.append(res)
    elif isinstance(res, FileError):
        errors.append(res)


def check_path(
    root: Path, rel_path: str, settings: Settings, rules: IgnoreRules
) -> SourceFile | Skipped | FileError | None:
    """Apply discovery's rules to one path (watcher event, didSave).

    None: ignored, a directory, or no longer there — nothing to index at this path.
    """
    rel = posixpath.normpath(rel_path.replace(os.sep, "/")) if rel_path else "."
    if rel.startswith("/") or rel == ".." or rel.startswith("../"):
        return Skipped(rel_path, "outside the workspace")
    if rel == ".":
        return None
    parts = rel.split("/")
    if GIT_DIR in parts or rules.is_ignored(rel, False):
        return None
    if not _utf8_name(rel):
        return Skipped(_printable(rel), "file name is not valid UTF-8")
    ctx = _Context(root, settings, rules)
    abs_path = os.path.join(ctx.root, *parts)
    try:
        st = os.lstat(abs_path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return FileError(rel, _os_message(exc))
    if stat.S_ISDIR(st.st_mode):
        return None
    # A path through a symlinked directory is not where the scan would find this file.
    parent_abs = os.path.dirname(abs_path)
    parent_real = os.path.realpath(parent_abs)
    expected = os.path.join(ctx.root_real, *parts[:-1]) if len(parts) > 1 else ctx.root_real
    if parent_real != expected:
        return Skipped(rel, "inside a symlinked directory (indexed at its real path)")
    if stat.S_ISLNK(st.st_mode):
        return ctx.classify_symlink(rel, rel.rpartition("/")[0], abs_path)
    if not stat.S_ISREG(st.st_mode):
        return Skipped(rel, f"not a regular file ({_special_kind(st.st_mode)})")
    return ctx.classify_file(rel, abs_path, st)


class FileSource(Protocol):
    """Where a run's files come from when it is not the working tree (a git revision:
    `indexer.files.gitrev.RevisionSource`). `SourceFile.mtime_ns` is then the source's own change
    marker: equal size and marker mean unchanged content, so it is not read again."""

    def discover(self) -> Discovery: ...

    def load(self, f: SourceFile) -> LoadedSource | Skipped | FileError: ...


def stat_changes(
    found: Discovery, known: Mapping[str, tuple[int, int]], seen: dict[str, tuple[int, int]] | None = None
) -> list[str]:
    """Paths a scan shows changed against `known` (path -> indexed size, mtime_ns): added,
    modified (size or mtime differ) or deleted. Nothing is read; a file the scan could not
    see into (an error on it or a folder above it) counts as unchanged.

    `seen`, kept by the caller between scans, remembers new files that were reported and
    are still not indexed (binary by content, ...): reported once, not on every scan.
    """
    failed = tuple(e.path for e in found.errors)
    changed: list[str] = []
    present: dict[str, tuple[int, int]] = {}
    for f in found.files:
        mark = (f.size, f.mtime_ns)
        rec = known.get(f.path)
        if rec is None:
            present[f.path] = mark
            if seen is None or seen.get(f.path) != mark:
                changed.append(f.path)
        elif rec != mark:
            changed.append(f.path)
    if seen is not None:
        seen.clear()
        seen.update(present)
    keep = {f.path for f in found.files}
    changed.extend(
        p for p in known
        if p not in keep and not any(p == d or p.startswith(d.rstrip("/") + "/") for d in failed)
    )
    return sorted(changed)


# -- reading ------------------------------------------------------------------------------
def load_source(f: SourceFile, settings: Settings) -> LoadedSource | Skipped | FileError:
    """Read `f` once (at most max_file_bytes + 1 bytes) and check what only content shows."""
    limit = settings.max_file_bytes
    try:
        fd = _open_for_read(f.abs_path)
    except (FileNotFoundError, NotADirectoryError):
        return Skipped(f.path, "deleted before it could be read")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Skipped(f.path, "replaced by a symlink since the scan")
        return FileError(f.path, f"cannot read: {_os_message(exc)}")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return Skipped(f.path, f"not a regular file ({_special_kind(st.st_mode)})")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        return FileError(f.path, f"cannot read: {_os_message(exc)}")
    finally:
        os.close(fd)
    if len(data) > limit:
        return Skipped(f.path, f"larger than {human_size(limit)} ({human_size(max(st.st_size, len(data)))})")
    return check_content(f.path, data, settings)


def check_content(rel: str, data: bytes, settings: Settings | None = None) -> LoadedSource | Skipped:
    """What only the content shows (binary, encoding, generated, minified, a credential), for
    bytes read from disk or from a git blob; the text and hash of a file worth indexing.

    Without `settings` every file is scanned for secrets (no `indexSecretFiles` exemption)."""
    reason = _content_reason(data)
    if reason is not None:
        return Skipped(rel, reason)
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + bom
        return Skipped(rel, f"not valid UTF-8 (byte 0x{data[offset]:02x} at offset {offset})")
    reason = None
    if settings is None or not secret_allowed(rel, settings):
        # First: a key in a minified or generated file is still a key, and the reason
        # `explain` gives should be the one that matters.
        finding = secret_scan.scan(text, rel)
        if finding is not None:
            reason = f"may hold secrets ({finding})"
    reason = reason or _text_reason(text)
    if reason is not None:
        return Skipped(rel, reason)
    return LoadedSource(text=text, sha256=hashlib.sha256(data).hexdigest())


def _content_reason(data: bytes) -> str | None:
    """Checks on the raw bytes: empty, UTF-16/32, binary."""
    if not data:
        return "empty file"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16/UTF-32 text (only UTF-8 is indexed)"
    nul = data.find(b"\0", 0, BINARY_SNIFF_BYTES)
    if nul >= 0:
        return f"binary (NUL byte at offset {nul})"
    return None


def _text_reason(text: str) -> str | None:
    """Checks on the decoded text: generated header, minified or one-line data."""
    head = text[:4096].split("\n", GENERATED_HEAD_LINES)[:GENERATED_HEAD_LINES]
    for line in head:
        if _COMMENT_LEAD.match(line):
            m = _GENERATED_RE.search(line)
            if m is not None:
                marker = m.group(0) if len(m.group(0)) <= 60 else m.group(0)[:57] + "..."
                return f"generated file (header says {marker!r})"
    if len(text) > SINGLE_LINE and _SINGLE_LINE_RE.search(text):
        longest = max(map(len, text.split("\n")))
        return f"has a {longest:,}-character line (minified or data)"
    newlines = text.count("\n")
    lines = newlines if text.endswith("\n") else newlines + 1
    average = len(text) / max(lines, 1)
    if average > AVERAGE_LINE and _LONG_LINE_RE.search(text):
        longest = max(map(len, text.split("\n")))
        return f"looks minified (longest line {longest:,} characters, average {average:,.0f})"
    return None
