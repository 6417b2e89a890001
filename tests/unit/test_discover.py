"""Discovery and reading: every skip reason, symlinks, special files, permission errors,
`check_path` for single paths, and `load_source`'s content checks."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import indexer.files.discover as discover_mod
from indexer.core.settings import Settings
from indexer.core.types import FileError, Skipped, SourceFile
from indexer.files.discover import (
    Discovery,
    IgnoreRules,
    LoadedSource,
    check_path,
    discover,
    human_size,
    load_source,
)

REPO = Path(__file__).resolve().parents[2]


def make(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    return root


def reasons(d: Discovery) -> dict[str, str]:
    return {s.path: s.reason for s in d.skipped}


def load(
    root: Path, rel: str, settings: Settings | None = None
) -> LoadedSource | Skipped | FileError:
    s = settings or Settings()
    res = check_path(root, rel, s, IgnoreRules.load(root, s))
    assert isinstance(res, SourceFile), res
    return load_source(res, s)


def test_sorted_posix_relative_results(tmp_path: Path) -> None:
    make(tmp_path, {"b/z.py": "x", "a.py": "x", "b/a/y.py": "x", "B.py": "x"})
    d = discover(tmp_path, Settings())
    assert [f.path for f in d.files] == ["B.py", "a.py", "b/a/y.py", "b/z.py"]
    f = d.files[2]
    assert f.abs_path == str(tmp_path / "b" / "a" / "y.py") and f.size == 1 and f.mtime_ns > 0
    assert d.skipped == [] and d.errors == []


def test_skips_by_name_and_size(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "logo.png": b"\x89PNG",
            "lib.SO": b"x",
            "app.min.js": "x",
            "style.min.css": "x",
            "app.js.map": "{}",
            "package-lock.json": "{}",
            "Cargo.lock": "x",
            "go.sum": "x",
            "empty.py": "",
            "big.py": "x" * (5 * 1024 * 1024 + 200 * 1024),
            "ok.py": "x",
        },
    )
    d = discover(tmp_path, Settings())
    assert [f.path for f in d.files] == ["ok.py"]
    assert reasons(d) == {
        "logo.png": "binary file type (.png)",
        "lib.SO": "binary file type (.so)",
        "app.min.js": "minified file (.min.js)",
        "style.min.css": "minified file (.min.css)",
        "app.js.map": "source map (.map)",
        "package-lock.json": "lock file",
        "Cargo.lock": "lock file",
        "go.sum": "lock file",
        "empty.py": "empty file",
        "big.py": "larger than 1.0 MiB (5.2 MiB)",
    }


def test_human_size() -> None:
    assert [human_size(n) for n in (10, 2048, 1024 * 1024)] == ["10 bytes", "2.0 KiB", "1.0 MiB"]


def test_five_megabyte_minified_js(tmp_path: Path) -> None:
    line = "var a=function(b){return b*2};" * (5 * 1024 * 1024 // 30)
    make(tmp_path, {"bundle.js": line, "multi.js": ("x" * 1500 + ";\n") * 200})
    assert reasons(discover(tmp_path, Settings())) == {"bundle.js": "larger than 1.0 MiB (5.0 MiB)"}
    big = Settings(max_file_bytes=8 * 1024 * 1024)
    res = load(tmp_path, "bundle.js", big)
    assert (
        isinstance(res, Skipped)
        and res.reason.startswith("has a 5,242,")
        and "minified" in res.reason
    )
    res = load(tmp_path, "multi.js")
    assert isinstance(res, Skipped)
    assert res.reason == "looks minified (longest line 1,501 characters, average 1,502)"


def test_one_very_long_line_in_a_normal_file(tmp_path: Path) -> None:
    body = "def f():\n    return 1\n" * 2000
    make(
        tmp_path,
        {
            "data.py": body + "BLOB = '" + "a" * 200_000 + "'\n",
            "ok.py": body + "x = '" + "a" * 5000 + "'\n",
        },
    )
    res = load(tmp_path, "data.py")
    assert (
        isinstance(res, Skipped) and res.reason == "has a 200,009-character line (minified or data)"
    )
    assert isinstance(load(tmp_path, "ok.py"), LoadedSource)  # one 5k line among short ones is fine


def test_binary_content(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "blob.dat": b"abc\0def",
            "late.txt": b"abc\n" * 2500 + b"\0",
            "u16.txt": "hi".encode("utf-16"),
        },
    )
    res = load(tmp_path, "blob.dat")
    assert isinstance(res, Skipped) and res.reason == "binary (NUL byte at offset 3)"
    # Only the first 8 KiB are sniffed; a later NUL is valid UTF-8 text.
    assert isinstance(load(tmp_path, "late.txt"), LoadedSource)
    res = load(tmp_path, "u16.txt")
    assert isinstance(res, Skipped) and res.reason.startswith("UTF-16")


def test_utf8_validation_and_bom(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "latin1.py": "x = 'café'\n".encode("latin-1"),
            "bom.py": b"\xef\xbb\xbfx = 1\n",
            "bad_after_bom.py": b"\xef\xbb\xbfab\xc3",
        },
    )
    res = load(tmp_path, "latin1.py")
    assert isinstance(res, Skipped) and res.reason == "not valid UTF-8 (byte 0xe9 at offset 8)"
    res = load(tmp_path, "bom.py")
    assert isinstance(res, LoadedSource) and res.text == "x = 1\n"
    assert res.sha256 == hashlib.sha256(b"\xef\xbb\xbfx = 1\n").hexdigest()  # raw bytes
    res = load(tmp_path, "bad_after_bom.py")
    assert isinstance(res, Skipped) and res.reason == "not valid UTF-8 (byte 0xc3 at offset 5)"


@pytest.mark.parametrize(
    ("head", "marker"),
    [
        (
            "// Code generated by protoc-gen-go. DO NOT EDIT.\n",
            "Code generated by protoc-gen-go. DO NOT EDIT",
        ),
        (
            "# -*- coding: utf-8 -*-\n# Generated by the protocol buffer compiler.  DO NOT EDIT!\n",
            "Generated by the protocol buffer compiler.  DO NOT EDIT",
        ),
        ("/**\n * Copyright\n *\n * @generated SignedSource<<abc>>\n */\n", "@generated"),
        ('"""Auto-generated file, do not edit."""\n', "Auto-generated"),
    ],
)
def test_generated_headers(tmp_path: Path, head: str, marker: str) -> None:
    make(tmp_path, {"gen.txt": head + "x = 1\n"})
    res = load(tmp_path, "gen.txt")
    assert isinstance(res, Skipped) and res.reason == f"generated file (header says {marker!r})"


def test_generated_markers_in_code_or_late_are_not_generated(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "codegen.py": 'HEADER = "// Code generated by mytool. DO NOT EDIT."\n',
            "late.py": "x = 1\n" * 20 + "# @generated\n",
        },
    )
    assert isinstance(load(tmp_path, "codegen.py"), LoadedSource)
    assert isinstance(load(tmp_path, "late.py"), LoadedSource)


def test_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    outside = make(tmp_path / "elsewhere", {"o.py": "x"})
    make(root, {"src/real.py": "x", "src/pkg/m.py": "x", "node_modules/x/i.js": "x"})
    os.symlink("loop_b", root / "loop_a")
    os.symlink("loop_a", root / "loop_b")
    os.symlink(outside / "o.py", root / "out_file.py")
    os.symlink(outside, root / "out_dir")
    os.symlink("missing.py", root / "broken.py")
    os.symlink("src/real.py", root / "alias.py")
    os.symlink("src/pkg", root / "pkg_link")
    os.symlink("node_modules/x", root / "x_link")
    os.symlink(outside, root / "node_modules_link")
    os.symlink("../node_modules", root / "src" / "node_modules")  # ignored like the real folder
    d = discover(root, Settings())
    assert [f.path for f in d.files] == ["src/pkg/m.py", "src/real.py"]
    assert reasons(d) == {
        "loop_a": "symlink loop",
        "loop_b": "symlink loop",
        "out_file.py": "symlink points outside the workspace",
        "out_dir": "symlink points outside the workspace",
        "node_modules_link": "symlink points outside the workspace",
        "broken.py": "broken symlink",
        "alias.py": "symlink to src/real.py (indexed at its real path)",
        "pkg_link": "symlink to src/pkg (indexed at its real path)",
        "x_link": "symlink to node_modules/x (ignored there)",
    }
    assert d.errors == []


def test_symlinked_root(tmp_path: Path) -> None:
    real = make(tmp_path / "real", {"a.py": "x"})
    os.symlink("a.py", real / "b.py")
    os.symlink(real, tmp_path / "link")
    d = discover(tmp_path / "link", Settings())
    assert [f.path for f in d.files] == ["a.py"]
    assert reasons(d) == {"b.py": "symlink to a.py (indexed at its real path)"}


def test_fifo_is_reported_and_never_opened(tmp_path: Path) -> None:
    make(tmp_path, {"a.py": "x"})
    os.mkfifo(tmp_path / "pipe")
    d = discover(tmp_path, Settings())
    assert reasons(d) == {"pipe": "not a regular file (FIFO)"}
    # A FIFO swapped in after the scan: load_source must not block on it.
    fake = SourceFile(path="pipe", abs_path=str(tmp_path / "pipe"), size=1, mtime_ns=0)
    res = load_source(fake, Settings())
    assert isinstance(res, Skipped) and res.reason == "not a regular file (FIFO)"


def test_unreadable_file_and_directory_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root nothing is unreadable, so the OS calls the module uses are made to refuse."""
    make(tmp_path, {"secret.py": "x", "locked/a.py": "x", "ok.py": "x"})

    def refuse_open(path: str) -> int:
        raise PermissionError(13, "Permission denied", path)

    real_scandir = os.scandir

    def refuse_locked(path: str) -> Iterator[os.DirEntry[str]]:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(discover_mod, "_scandir", refuse_locked)
    d = discover(tmp_path, Settings())
    assert [f.path for f in d.files] == ["ok.py", "secret.py"]
    assert d.errors == [FileError("locked", "cannot list directory: Permission denied")]
    monkeypatch.setattr(discover_mod, "_open_for_read", refuse_open)
    assert load_source(d.files[1], Settings()) == FileError(
        "secret.py", "cannot read: Permission denied"
    )


def _nobody_cmd() -> list[str] | None:
    if os.geteuid() != 0:
        return None
    if shutil.which("setpriv"):
        return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    return None


_AS_NOBODY = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from indexer.files.discover import discover, load_source
from indexer.core.settings import Settings
d = discover(Path(sys.argv[2]), Settings())
loaded = {f.path: getattr(load_source(f, Settings()), "error", "ok") for f in d.files}
print(json.dumps({"errors": [[e.path, e.error] for e in d.errors], "loaded": loaded}))
"""


def test_unreadable_as_a_real_user() -> None:
    """chmod 000 as user nobody (root reads everything, so drop privileges)."""
    cmd = _nobody_cmd()
    if cmd is None:
        pytest.skip("needs root and setpriv or runuser")
    probe = subprocess.run(
        [
            *cmd,
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(REPO)!r}); import indexer.files.discover",
        ],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot run this interpreter/repo: {probe.stderr.decode()[-200:]}")
    ws = Path(tempfile.mkdtemp(prefix="forge-perm-"))
    try:
        make(ws, {"ok.py": "x", "secret.py": "x", "locked/a.py": "x"})
        for p in (ws, ws / "ok.py", ws / "locked" / "a.py"):
            p.chmod(0o755)
        (ws / "secret.py").chmod(0o000)
        (ws / "locked").chmod(0o000)
        out = subprocess.run(
            [*cmd, sys.executable, "-c", _AS_NOBODY, str(REPO), str(ws)],
            capture_output=True,
            timeout=60,
            check=True,
        )
        result = json.loads(out.stdout)
        assert result["errors"] == [["locked", "cannot list directory: Permission denied"]]
        assert result["loaded"] == {"ok.py": "ok", "secret.py": "cannot read: Permission denied"}
    finally:
        (ws / "locked").chmod(0o755)
        shutil.rmtree(ws)


def test_load_source_reads_at_most_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(tmp_path, {"grow.py": "x = 1\n"})
    s = Settings(max_file_bytes=1024)
    f = check_path(tmp_path, "grow.py", s, IgnoreRules.load(tmp_path, s))
    assert isinstance(f, SourceFile)
    (tmp_path / "grow.py").write_text("x = 1\n" * 100_000)  # grew after the scan
    sizes: list[int] = []
    real_fdopen = os.fdopen

    class Spy:
        def __init__(self, fh: object) -> None:
            self.fh = fh

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *a: object) -> None:
            self.fh.close()  # type: ignore[attr-defined]

        def read(self, n: int) -> bytes:
            sizes.append(n)
            return self.fh.read(n)  # type: ignore[attr-defined]

    monkeypatch.setattr(discover_mod.os, "fdopen", lambda *a, **k: Spy(real_fdopen(*a, **k)))
    res = load_source(f, s)
    assert sizes == [1025]
    assert isinstance(res, Skipped) and res.reason == "larger than 1.0 KiB (585.9 KiB)"


def test_load_source_vanished_file(tmp_path: Path) -> None:
    make(tmp_path, {"a.py": "x"})
    s = Settings()
    f = check_path(tmp_path, "a.py", s, IgnoreRules.load(tmp_path, s))
    assert isinstance(f, SourceFile)
    (tmp_path / "a.py").unlink()
    assert load_source(f, s) == Skipped("a.py", "deleted before it could be read")


def test_check_path(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".gitignore": "*.log\nout/\n",
            "src/a.py": "x",
            "b.log": "x",
            "out/c.py": "x",
            "node_modules/d.js": "x",
            ".git/config": "x",
            "e.png": b"x",
            "src/sub/f.py": "x",
        },
    )
    os.symlink("src", tmp_path / "src_link")
    os.symlink("a.py", tmp_path / "src" / "alias.py")
    s = Settings()
    rules = IgnoreRules.load(tmp_path, s)

    def cp(rel: str) -> object:
        return check_path(tmp_path, rel, s, rules)

    a = cp("src/a.py")
    assert (
        isinstance(a, SourceFile)
        and a.path == "src/a.py"
        and a.abs_path == str(tmp_path / "src" / "a.py")
    )
    assert cp("./src/a.py") == a
    for rel in [
        "b.log",
        "out/c.py",
        "node_modules/d.js",
        ".git/config",
        "src",
        "missing.py",
        "src/a.py/nope",
        "",
    ]:
        assert cp(rel) is None, rel
    assert cp("e.png") == Skipped("e.png", "binary file type (.png)")
    assert cp("src/alias.py") == Skipped(
        "src/alias.py", "symlink to src/a.py (indexed at its real path)"
    )
    assert cp("src_link/sub/f.py") == Skipped(
        "src_link/sub/f.py", "inside a symlinked directory (indexed at its real path)"
    )
    assert cp("../x.py") == Skipped("../x.py", "outside the workspace")


def test_unreadable_gitignore_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(tmp_path, {".gitignore": "*.py\n", "a.py": "x", "b.txt": "x"})
    real_open = open

    def refuse(path: object, *a: object, **k: object) -> object:
        if str(path).endswith(".gitignore"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", refuse)
    d = discover(tmp_path, Settings())
    assert d.errors == [FileError(".gitignore", "cannot read ignore file: Permission denied")]
    assert "a.py" in {f.path for f in d.files}  # rules it could not read do not apply


def test_undecodable_file_name(tmp_path: Path) -> None:
    make(tmp_path, {"ok.py": "x"})
    (tmp_path / os.fsdecode(b"bad\xff.py")).write_text("x")
    (tmp_path / os.fsdecode(b"dir\xfe")).mkdir()
    (tmp_path / os.fsdecode(b"dir\xfe") / "inner.py").write_text("x")
    d = discover(tmp_path, Settings())
    assert [f.path for f in d.files] == ["ok.py"]
    assert reasons(d) == {
        "bad\ufffd.py": "file name is not valid UTF-8",
        "dir\ufffd": "file name is not valid UTF-8",
    }


def test_check_path_normalises(tmp_path: Path) -> None:
    make(tmp_path, {"src/a.py": "x"})
    s = Settings()
    rules = IgnoreRules.load(tmp_path, s)
    a = check_path(tmp_path, "src//a.py", s, rules)
    assert isinstance(a, SourceFile) and a.path == "src/a.py"
    assert check_path(tmp_path, "src/../src/a.py", s, rules) == a
    assert check_path(tmp_path, str(tmp_path / "src/a.py"), s, rules) == Skipped(
        str(tmp_path / "src/a.py"), "outside the workspace"
    )
