"""Indexer values → LSP values. Indexer lines are 1-based inclusive; LSP's are 0-based."""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from indexer.core.types import SearchHit, Snippet, SymbolMatch
from server.roots import RootState

SYMBOL_KINDS: dict[str, types.SymbolKind] = {
    "function": types.SymbolKind.Function,
    "method": types.SymbolKind.Method,
    "class": types.SymbolKind.Class,
    "interface": types.SymbolKind.Interface,
    "struct": types.SymbolKind.Struct,
    "enum": types.SymbolKind.Enum,
    "trait": types.SymbolKind.Interface,
    "impl": types.SymbolKind.Class,
    "module": types.SymbolKind.Module,
    "namespace": types.SymbolKind.Namespace,
    "type": types.SymbolKind.Class,
    "constant": types.SymbolKind.Constant,
    "variable": types.SymbolKind.Variable,
    "section": types.SymbolKind.String,
    "block": types.SymbolKind.Object,
}


def symbol_kind(kind: str | None) -> types.SymbolKind:
    return SYMBOL_KINDS.get(kind or "", types.SymbolKind.Variable)


def line_range(
    start_line: int, end_line: int, text: str | None = None, start_col: int = 0
) -> types.Range:
    """Range of 1-based inclusive lines; ends after the last character of `text` if given."""
    start = types.Position(line=max(start_line - 1, 0), character=max(start_col, 0))
    if text is not None:
        last = text.rstrip("\n").rsplit("\n", 1)[-1]
        end = types.Position(
            line=max(end_line - 1, 0), character=len(last.encode("utf-16-le")) // 2
        )
    else:
        end = types.Position(line=max(end_line, 0), character=0)
    return types.Range(start=start, end=end)


def range_json(r: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": r.start.line, "character": r.start.character},
        "end": {"line": r.end.line, "character": r.end.character},
    }


def search_result(root: RootState, hit: SearchHit) -> dict[str, Any]:
    """One `forge/search` result."""
    return {
        "uri": root.uri_of(hit.path),
        "range": range_json(line_range(hit.start_line, hit.end_line, hit.preview)),
        "symbol": hit.symbol,
        "kind": hit.kind,
        "language": hit.language,
        "score": round(float(hit.score), 6),
        "preview": hit.preview,
        "root": root.uri,
    }


def snippet(root: RootState, s: Snippet) -> dict[str, Any]:
    """One `forge/context` snippet."""
    return {
        "uri": root.uri_of(s.path),
        "range": range_json(line_range(s.start_line, s.end_line, s.text)),
        "text": s.text,
        "score": round(float(s.score), 6),
        "tokens": s.tokens,
    }


def symbol_information(root: RootState, m: SymbolMatch) -> types.SymbolInformation:
    """A `workspace/symbol` answer from the symbols table."""
    return types.SymbolInformation(
        name=m.name,
        kind=symbol_kind(m.kind),
        location=types.Location(
            uri=root.uri_of(m.path),
            range=types.Range(
                start=types.Position(line=max(m.start_line - 1, 0), character=max(m.start_col, 0)),
                end=types.Position(line=max(m.end_line, 0), character=0),
            ),
        ),
        container_name=m.container,
    )


def hit_symbol_information(root: RootState, hit: SearchHit) -> types.SymbolInformation:
    """A `workspace/symbol` answer from a semantic hit whose symbol is not in the table."""
    name = hit.symbol or hit.path.rsplit("/", 1)[-1]
    container, _, short = name.rpartition(".")
    return types.SymbolInformation(
        name=short or name,
        kind=symbol_kind(hit.kind),
        location=types.Location(
            uri=root.uri_of(hit.path), range=line_range(hit.start_line, hit.end_line, hit.preview)
        ),
        container_name=container or None,
    )
