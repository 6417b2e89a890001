"""What `search`, `context` and `status` print, as text or JSON: one place for both CLI paths.

The full CLI (`server.cli`) and the daemon client that answers without it
(`server.cli_fast`) print through these functions, so a result looks the same whichever
path served it, from the same typed results (`indexer.core.types`) whichever workspace answered
(in-process or the daemon's). Standard library and `indexer.core.types` only at import: the fast
path must not import the CLI framework. Search results are styled with rich only when stdout is a terminal that takes
colour (not `NO_COLOR`, not `TERM=dumb`); rich is imported then and only then (about
40 ms), and the text is the same either way, only the colours differ.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from indexer.core.types import ContextResult, SearchHit, WorkspaceStatus

#: Lines of code shown under each search hit: its first line and the best-matching ones.
PREVIEW_LINES = 3
_TERM = re.compile(r"[a-z0-9]+")
#: (text, rich style) pieces of one output line.
Line = list[tuple[str, str]]


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def error_line(message: str) -> None:
    """The one error line every failing command prints (exit status 1 is the caller's)."""
    _err(f"error: {message}")


def print_search(query: str | None, hits: list[SearchHit], *, as_json: bool,
                 root: Path | None = None) -> None:
    """Each hit as `score  path:line  symbol  (start-end)` with a short preview of its code
    under it; `path:line` is relative to the current folder when the hit is under it, else
    absolute, so that a terminal can open it. `--json` is the hits without their text."""
    if as_json:
        _out(json.dumps({"query": query, "results": [public_hit(h) for h in hits]}, indent=2))
        return
    if not hits:
        _out("no results")
        return
    width = shutil.get_terminal_size((100, 24)).columns
    lines: list[Line] = []
    for h in hits:
        where = f"{display_path(h.path, root)}:{h.start_line}"
        head: Line = [(f"{h.score:.3f}", "dim"), ("  ", ""), (where, "bold cyan")]
        if h.symbol:
            head += [("  ", ""), (str(h.symbol), "yellow")]
        head.append((f"  ({h.start_line}-{h.end_line})", "dim"))
        lines.append(head)
        shown = preview_lines(str(h.preview or ""), int(h.start_line), query)
        gutter = max((len(str(n)) for n, _ in shown), default=1)
        bar, more = ("│", "…") if _can_write("│…") else ("|", "...")
        for n, text in shown:
            prefix = f"    {n:>{gutter}} {bar} "
            lines.append([(prefix, "dim"), (clip(text, width - len(prefix), more), "")])
    _write_lines(lines)


def public_hit(h: SearchHit) -> dict[str, Any]:
    """A hit as `--json` prints it: where it is and how it scored, not the chunk's text."""
    return {"path": h.path, "start_line": h.start_line, "end_line": h.end_line, "score": h.score,
            "symbol": h.symbol, "language": h.language}


def display_path(path: str, root: Path | None) -> str:
    """`path` (relative to the workspace) as a terminal can open it from here."""
    if root is None:
        return path
    full = Path(path) if Path(path).is_absolute() else root / path
    try:
        return full.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(full)


def preview_lines(body: str, start_line: int, query: str | None, limit: int = PREVIEW_LINES) -> list[tuple[int, str]]:
    """Up to `limit` (line number, text) of a hit's code: its first non-blank line, then the
    lines with the most words of the query (else the lines that follow), in file order,
    dedented together."""
    numbered = [(start_line + i, line.rstrip().expandtabs(4)) for i, line in enumerate(body.split("\n"))]
    code = [(n, line) for n, line in numbered if line.strip()]
    if not code:
        return []
    terms = {t for t in _TERM.findall((query or "").lower()) if len(t) > 2}
    rest = code[1:]
    scored = [(sum(t in line.lower() for t in terms), n) for n, line in rest]
    chosen = {code[0][0]} | {n for s, n in sorted(scored, key=lambda x: (-x[0], x[1]))[: limit - 1] if s > 0}
    for n, _ in rest:  # too few matches: the lines right after the first
        if len(chosen) >= limit:
            break
        chosen.add(n)
    picked = [(n, line) for n, line in code if n in chosen]
    indent = min(len(line) - len(line.lstrip()) for _, line in picked)
    return [(n, line[indent:]) for n, line in picked]


def clip(text: str, width: int, more: str = "…") -> str:
    """`text` cut to `width` characters, `more` marking the cut (a few are always kept)."""
    width = max(width, 10)
    return text if len(text) <= width else text[: width - len(more)] + more


def _can_write(chars: str) -> bool:
    """Whether stdout's encoding has `chars` (not so for an ASCII or Latin-1 locale)."""
    try:
        chars.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _colour() -> bool:
    """Style the output: stdout is a terminal and nothing asks for plain text."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


def _write_lines(lines: list[Line]) -> None:
    if not _colour():
        for line in lines:
            _out("".join(text for text, _ in line))
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)
    for line in lines:
        console.print(Text.assemble(*[(text, style) if style else text for text, style in line]))


def context_json(result: ContextResult) -> dict[str, Any]:
    """A context answer as `--json` prints it (with `file_indexed`, which
    `server.cli_paths.check_context_file` takes out)."""
    return {"budget": result.budget, "tokens_used": result.tokens_used, "snippets": [
        {"path": s.path, "start_line": s.start_line, "end_line": s.end_line, "score": s.score,
         "tokens": s.tokens, "text": s.text} for s in result.snippets],
        "file_indexed": result.file_indexed}


def print_context(query: str | None, data: dict[str, Any], *, as_json: bool) -> None:
    """`data` is `context_json`'s, checked by `check_context_file` when a file was asked about."""
    if as_json:
        _out(json.dumps({"query": query, **data}, indent=2))
        return
    for s in data["snippets"]:
        _out(f"--- {s['path']}:{s['start_line']}-{s['end_line']} (score {s['score']:.3f}, {s['tokens']} tokens)")
        _out(s["text"])
    _err(f"--- {data['tokens_used']}/{data['budget']} tokens")


def print_status(data: WorkspaceStatus, *, as_json: bool) -> None:
    if as_json:
        _out(json.dumps(data, indent=2))
        return
    keys = ["root", "files", "chunks", "vectors", "symbols", "model", "state_dir", "last_indexed", "last_error"]
    keys += ["revision"] if "revision" in data else []
    keys += [k for k in ("daemon_pid", "paused") if k in data]
    for key in keys:
        _out(f"{key:>13}: {data.get(key)}")
    health = data.get("health") or {}
    events = health.get("events") or []
    last = events[-1] if events and health.get("state", "ok") != "ok" else None
    note = f" ({last['what']}: {last['cause']}, {last['at']})" if last else ""
    _out(f"{'health':>13}: {health.get('state', 'ok')}{note}")
    for name, remote in (data.get("remote") or {}).items():
        why = f" ({remote['lastError']})" if remote.get("breaker") != "closed" and remote.get("lastError") else ""
        _out(f"{name:>13}: {remote.get('url')} breaker {remote.get('breaker')}{why}")
