"""Pure pieces of the server: indexer → LSP conversion, params, errors, root lookup."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lsprotocol import types
from pydantic import ValidationError

from indexer.core.errors import Cancelled, IndexLocked, IndexNotReady, InvalidQuery, ModelNotFound
from indexer.core.settings import Settings
from indexer.core.types import Progress, SearchHit, Snippet, SymbolMatch
from server import convert
from server.errors import to_rpc_error
from server.logs import LspLogHandler
from server.params import ContextParams, ParamsError, SearchParams, parse_params
from server.progress import describe
from server.queries import reads_like_sentence
from server.roots import RootRegistry, RootState, coverage_of
from tests.conftest import REPO


def _root(path: Path) -> RootState:
    path.mkdir(parents=True, exist_ok=True)
    return RootState(uri=path.as_uri(), path=path.resolve(), name=path.name, settings=Settings())


def test_search_hit_to_result(tmp_path: Path) -> None:
    root = _root(tmp_path / "a")
    hit = SearchHit(
        "pkg/m.py",
        3,
        5,
        0.25,
        "C.run",
        "python",
        "method",
        "id1",
        "def run(self):\n    x = 1\n    return x",
    )
    r = convert.search_result(root, hit)
    assert r["uri"] == (root.path / "pkg/m.py").as_uri()
    assert r["range"] == {"start": {"line": 2, "character": 0}, "end": {"line": 4, "character": 12}}
    assert (r["symbol"], r["kind"], r["language"], r["score"]) == (
        "C.run",
        "method",
        "python",
        0.25,
    )


def test_ranges_count_utf16_units(tmp_path: Path) -> None:
    r = convert.line_range(1, 1, "s = '😀'")
    assert r.end.character == 8  # the emoji is two UTF-16 code units


def test_symbol_information(tmp_path: Path) -> None:
    root = _root(tmp_path / "a")
    m = SymbolMatch("parse", "function", "Config", "c.py", 10, 20, 4, 1.0)
    info = convert.symbol_information(root, m)
    assert info.kind == types.SymbolKind.Function and info.container_name == "Config"
    assert info.location.range.start == types.Position(line=9, character=4)
    assert convert.symbol_kind("trait") == types.SymbolKind.Interface
    assert convert.symbol_kind("unheard-of") == types.SymbolKind.Variable


def test_hit_symbol_information_splits_the_qualified_name(tmp_path: Path) -> None:
    root = _root(tmp_path / "a")
    hit = SearchHit(
        "c.py", 1, 2, 0.1, "Outer.Inner.go", "python", "method", "id", "def go():\n  pass"
    )
    info = convert.hit_symbol_information(root, hit)
    assert (info.name, info.container_name) == ("go", "Outer.Inner")


def test_snippet(tmp_path: Path) -> None:
    root = _root(tmp_path / "a")
    s = convert.snippet(root, Snippet("x.go", 1, 2, "func A() {\n}", 0.5, 7))
    assert s["tokens"] == 7 and s["range"]["end"] == {"line": 1, "character": 1}


def test_params_camel_case_and_bounds() -> None:
    p = parse_params(
        ContextParams, {"query": "q", "budgetTokens": 100, "textDocument": {"uri": "file:///x"}}
    )
    assert p.budget_tokens == 100 and p.text_document is not None
    assert parse_params(SearchParams, {"query": " hi ", "workDoneToken": "t"}).query == "hi"
    with pytest.raises(ValidationError):
        parse_params(SearchParams, {"query": "x", "limit": 201})
    with pytest.raises(ParamsError):
        parse_params(SearchParams, ["x"])


@pytest.mark.parametrize(
    ("exc", "code", "kind"),
    [
        (IndexNotReady("not yet"), -32803, "IndexNotReady"),
        (ModelNotFound("no model"), -32803, "ModelNotFound"),
        (IndexLocked("locked"), -32803, "IndexLocked"),
        (InvalidQuery("bad glob"), -32602, "InvalidQuery"),
        (Cancelled("stop"), -32800, "Cancelled"),
        (ParamsError("expected an object"), -32602, "InvalidParams"),
        (RuntimeError("bug"), -32603, "InternalError"),
    ],
)
def test_errors_map_to_json_rpc(exc: Exception, code: int, kind: str) -> None:
    err = to_rpc_error(exc, "forge/search")
    assert err.code == code and err.data["kind"] == kind
    if code == -32803:
        assert err.message == str(exc)
        assert err.data["retryable"] == isinstance(exc, IndexNotReady | IndexLocked)


def test_validation_errors_name_the_wire_parameter() -> None:
    with pytest.raises(ValidationError) as info:
        SearchParams.model_validate({"query": "x", "limit": "ten", "extra": 1})
    msg = to_rpc_error(info.value, "forge/search").message
    assert "'limit'" in msg and "'extra': unknown parameter" in msg and "'ten'" in msg


def test_registry_picks_the_longest_matching_root(tmp_path: Path) -> None:
    reg = RootRegistry()
    outer, inner = _root(tmp_path / "mono"), _root(tmp_path / "mono/packages/web")
    reg.add(outer)
    reg.add(inner)
    (inner.path / "src").mkdir()
    found = reg.for_uri((inner.path / "src/app.ts").as_uri())
    assert found is not None and found[0] is inner and found[1] == "src/app.ts"
    found = reg.for_uri((outer.path / "README.md").as_uri())
    assert found is not None and found[0] is outer
    assert reg.for_uri((tmp_path / "monolith/x.py").as_uri()) is None  # a prefix, not a parent
    assert reg.for_uri("untitled:Untitled-1") is None
    assert reg.for_uri(inner.path.as_uri()) == (inner, "")


def test_coverage_sums_roots(tmp_path: Path) -> None:
    a, b = _root(tmp_path / "a"), _root(tmp_path / "b")
    a.note_progress(Progress("index", 5, 10, 7, 20))
    b.note_progress(Progress("index", 4, 4, 9, 9))
    b.finish_full_scan()
    cov = coverage_of([a, b])
    assert cov == {
        "filesIndexed": 9,
        "filesTotal": 14,
        "ratio": 0.643,
        "semantic": 0.0,  # root a has not begun embedding
        "complete": False,
        "indexing": [],
    }
    a.files_scanned()
    a.note_progress(Progress("embed", 0, 0, 5, 20))  # first slice: 5 of a 20-chunk backlog
    a.note_progress(Progress("embed", 0, 0, 5, 15))  # second slice: 5 more of the 15 left
    assert a.semantic_ratio() == 0.5 and coverage_of([a, b])["semantic"] == 0.5


def test_progress_text() -> None:
    # Storing files is the first 10 %, embedding the other 90 %.
    assert describe(Progress("index", 3, 12, 10, 0)) == ("3/12 files, 10 chunks", 2)
    assert describe(Progress("embed", 0, 0, 10, 40)) == ("embedding: 10/40 chunks", 32)
    assert describe(Progress("discover", 0, 0, 0, 0))[1] is None


def test_sentences_are_told_from_names() -> None:
    assert reads_like_sentence("parse the config file")
    assert not reads_like_sentence("parse_config_file")
    assert not reads_like_sentence("Config parse")


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def log_message(self, text: str, kind: types.MessageType) -> None:
        self.sent.append(text)
        logging.getLogger("server.test").error("while sending: %s", text)  # would recurse


def test_log_forwarding_is_filtered_and_does_not_recurse() -> None:
    rec = _Recorder()
    handler = LspLogHandler(rec, level=logging.INFO)  # type: ignore[arg-type]
    logger = logging.getLogger()
    logger.addHandler(handler)
    try:
        logging.getLogger("server.test").warning("hello")
        logging.getLogger("pygls.protocol").warning("Sending data: ...")
        logging.getLogger("indexer.pipeline").debug("too chatty")
    finally:
        logger.removeHandler(handler)
    assert rec.sent == ["server.test: hello"]


def test_native_writes_to_fd1_do_not_reach_the_protocol_stream() -> None:
    code = textwrap.dedent(
        """
        import os, sys
        from server.stdio import claim_stdout
        out = claim_stdout()
        os.write(1, b"native noise\\n")   # what llama.cpp does
        print("a stray print")
        out.write(b"PROTOCOL"); out.flush()
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=60, check=True
    )
    assert proc.stdout == b"PROTOCOL"
    assert b"native noise" in proc.stderr and b"a stray print" in proc.stderr
