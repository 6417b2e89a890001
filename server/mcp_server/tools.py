"""The MCP tools: search, context, find_symbol and index_status, on the official MCP SDK.

Each tool checks its arguments (`check_*`, plain functions with their own unit tests), runs
the query on a worker thread (the backends block), and answers twice over: text written
for a model to read (paths with line ranges, code in fenced blocks) and the same data as
`structuredContent` for clients that parse it. Anything that goes wrong that the agent can
act on (not indexed yet, a bad glob, the daemon gone) is a tool error with that message;
the server itself keeps running.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from indexer.core.errors import ForgeError
from indexer.core.globs import glob_problem
from indexer.core.limits import MAX_RESULTS, SearchMode
from server.mcp_server.backend import Backend

MAX_QUERY = 4096
MIN_BUDGET = 64  # the daemon's forge/context floor
MAX_BUDGET = 100_000
MAX_SYMBOLS = 100

INSTRUCTIONS = """\
forge-indexer serves a local semantic index of one workspace (a code folder on this machine;
nothing leaves it). Paths in answers are relative to that workspace; lines are 1-based.
Use `search` to find where something is implemented when you do not know the file or name
(describe it in words or paste code). Use `find_symbol` when you know (part of) a
function, class or method name and want its definition. Use `context` to get the most
relevant code for a task or around a file, packed to a token budget, ready to read. Use
`index_status` when answers look empty or stale (the index may still be building)."""


class ArgumentError(ToolError):
    """Arguments the schema lets through but that make no sense together."""


def check_query(query: str) -> str:
    q = query.strip()
    if not q:
        raise ArgumentError("query must not be blank: describe the code you are looking for")
    return q


def check_glob(path: str | None) -> list[str] | None:
    if path is None or not path.strip():
        return None
    problem = glob_problem(path)
    if problem is not None:
        raise ArgumentError(f"bad path glob {path!r}: {problem}")
    return [path.strip()]


def check_file(root: Path, file: str) -> str:
    """`file` (relative to the workspace, or absolute inside it) as a workspace-relative path."""
    p = Path(file).expanduser()
    full = (p if p.is_absolute() else root / p).resolve()
    if not full.is_relative_to(root):
        raise ArgumentError(f"file {file!r} is outside the workspace {root}: give a path inside it")
    if not full.is_file():
        raise ArgumentError(f"no file {file!r} in the workspace {root} (paths are relative to it)")
    return full.relative_to(root).as_posix()


def check_context(root: Path, query: str | None, file: str | None, line: int | None) -> tuple[str | None, str | None]:
    q = query.strip() if query else None
    if not q and not file:
        raise ArgumentError("give a query (what the code is for), a file, or both")
    if line is not None and not file:
        raise ArgumentError("line needs a file")
    return q or None, check_file(root, file) if file else None


def _fence(path: str) -> str:
    """A Markdown code fence with a language hint from the file name."""
    return "```" + (PurePosixPath(path).suffix.lstrip(".") or "")


def _result(text: str, data: dict[str, Any]) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def search_text(query: str, data: dict[str, Any]) -> str:
    hits = data["results"]
    lines = [f"{len(hits)} result{'s' if len(hits) != 1 else ''} for {query!r} (best first):"]
    if not data.get("complete", True):
        done, total = data.get("files_indexed"), data.get("files_total")
        lines.append(f"Note: the index is still being built ({done}/{total} files); results may be incomplete.")
    for n, h in enumerate(hits, 1):
        what = f"  {h['symbol']}" if h.get("symbol") else ""
        lines += ["", f"{n}. {h['path']}:{h['start_line']}-{h['end_line']}{what} "
                      f"({h.get('language') or '?'}, score {h['score']:.2f})",
                  _fence(h["path"]), h["code"].rstrip("\n"), "```"]
    if not hits:
        lines.append("No match: try other words, another mode, or a looser path/language filter.")
    return "\n".join(lines)


def context_text(data: dict[str, Any]) -> str:
    lines = [f"{len(data['snippets'])} snippets, {data['tokens_used']}/{data['budget']} tokens:"]
    for s in data["snippets"]:
        lines += ["", f"--- {s['path']}:{s['start_line']}-{s['end_line']}", _fence(s["path"]),
                  s["text"].rstrip("\n"), "```"]
    return "\n".join(lines)


def symbols_text(name: str, found: list[dict[str, Any]]) -> str:
    if not found:
        return f"No symbol matches {name!r}. Try a shorter or different part of the name, or `search`."
    lines = [f"{len(found)} definition{'s' if len(found) != 1 else ''} matching {name!r}:"]
    for s in found:
        where = f"{s['path']}:{s['start_line']}-{s['end_line']}"
        inside = f" in {s['container']}" if s.get("container") else ""
        lines.append(f"- {s['kind']} {s['name']}{inside}  {where}" + (f"\n    {s['line']}" if s.get("line") else ""))
    return "\n".join(lines)


async def _run(fn: Any) -> Any:
    """A blocking backend call on a worker thread; its `ForgeError` becomes a tool error."""
    try:
        return await anyio.to_thread.run_sync(fn)
    except ForgeError as exc:
        raise ToolError(str(exc)) from None


def build_server(backend: Backend) -> MCPServer[Any]:
    """The MCP server with its four tools, answering from `backend`."""
    from server import __version__

    app: MCPServer[Any] = MCPServer("forge-indexer", instructions=INSTRUCTIONS, version=__version__)
    root = backend.root
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                open_world_hint=False)

    @app.tool(annotations=read_only, structured_output=False)
    async def search(
        query: Annotated[str, Field(
            min_length=1, max_length=MAX_QUERY,
            description="What to find, in words ('where are retries with backoff configured') "
            "or code ('def parse_duration'). Natural language works best in hybrid or vector mode.")],
        k: Annotated[int, Field(ge=1, le=MAX_RESULTS, description="How many results, best first.")] = 10,
        mode: Annotated[SearchMode, Field(
            description="hybrid (default): meaning and exact words together; vector: meaning only; "
            "lexical: exact identifiers and words only.")] = "hybrid",
        path: Annotated[str | None, Field(
            description="Only files matching this gitignore-style glob, relative to the workspace, "
            "e.g. 'src/**/*.py' or 'tests/'.")] = None,
        language: Annotated[str | None, Field(
            description="Only this language, e.g. 'python', 'typescript', 'rust', 'go'.")] = None,
        min_score: Annotated[float, Field(
            ge=0.0, le=1.0, description="Drop results whose relevance score (0-1) is below this.")] = 0.0,
    ) -> CallToolResult:
        """Search the local index of the workspace for code by meaning and by words.

        Use it to locate where something is implemented or used when you do not know the
        file or exact name. Returns up to k code chunks, best first, each with its path
        (relative to the workspace), 1-based line range, enclosing symbol, language,
        relevance score (0-1) and the code itself."""
        q = check_query(query)
        globs = check_glob(path)
        langs = [language.strip().lower()] if language and language.strip() else None
        data = await _run(lambda: backend.search(q, limit=k, mode=mode, paths=globs, languages=langs,
                                                 min_score=min_score))
        return _result(search_text(q, data), {"query": q, **data})

    @app.tool(annotations=read_only, structured_output=False)
    async def context(
        query: Annotated[str | None, Field(
            max_length=8192, description="The task or question the code is needed for. "
            "Optional when a file is given.")] = None,
        file: Annotated[str | None, Field(
            description="A file of the workspace (relative path) to gather context around: "
            "the code it uses and the code that resembles it.")] = None,
        line: Annotated[int | None, Field(ge=1, description="With file: the 1-based line to center on.")] = None,
        budget: Annotated[int, Field(
            ge=MIN_BUDGET, le=MAX_BUDGET, description="Most tokens to return, all snippets together.")] = 2048,
    ) -> CallToolResult:
        """Gather the code most relevant to a task (or to a file and line) from the local index
        of the workspace, packed to fit a token budget, ready to read before editing.

        Prefer it over several searches when you need background to make a change. Give a
        query, a file, or both. Returns snippets (path, 1-based line range, score, token count
        and code) whose token counts add up to at most the budget."""
        q, rel = check_context(root, query, file, line)
        data = await _run(lambda: backend.context(q, path=rel, line=line, budget=budget))
        if rel and not data["snippets"] and not q:
            raise ToolError(f"{rel} is not in the index (ignored, not code, or not indexed yet): "
                            "give a query instead, or see index_status")
        return _result(context_text(data), data)

    @app.tool(annotations=read_only, structured_output=False)
    async def find_symbol(
        name: Annotated[str, Field(
            min_length=1, max_length=256, description="A function, method, class, type or constant name, "
            "or part of one ('parse_dur', 'Config'). Matching is fuzzy: exact names rank first.")],
        limit: Annotated[int, Field(ge=1, le=MAX_SYMBOLS, description="How many definitions at most.")] = 20,
    ) -> CallToolResult:
        """Find where symbols are defined in the workspace, by name (like an editor's
        'go to symbol in workspace'), from the local index.

        Use it when you know (part of) a name and want its definition. Returns each match's
        kind, name, enclosing class or module, path (relative to the workspace), 1-based line
        range and its first line (usually the signature)."""
        n = name.strip()
        if not n:
            raise ArgumentError("name must not be blank")
        found = await _run(lambda: backend.symbols(n, limit=limit))
        return _result(symbols_text(n, found), {"name": n, "symbols": found})

    @app.tool(annotations=read_only, structured_output=False)
    async def index_status() -> CallToolResult:
        """Whether the workspace is indexed and how far indexing has got: files, chunks,
        symbols, embedded vectors, coverage, the last indexing time and error, and what
        serves the index (the shared daemon or this process). Use it when results look
        empty or out of date."""
        data = await _run(backend.status)
        return _result(json.dumps(data, indent=2), data)

    return app
