"""`forge-indexer` command line: index, search, context, status, model, lsp, daemon, token.

Built on typer (arguments, help) and rich (progress bar on stderr). Every failure the user
can act on is a `ForgeError` and prints as one line, `error: ...`, with exit status 1;
JSON output goes to stdout only, so `--json` output is always machine-readable.

`search`, `context`, `status` and `index` go through the workspace's daemon when one runs
(`server.daemon.remote`: no model load, no index open in this process) and work
in-process when none does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from indexer.core.errors import ForgeError, NotIndexed
from indexer.core.limits import MAX_RESULTS, MIN_BUDGET, mode_ok, modes_in_words
from indexer.core.settings import load_settings
from indexer.core.types import Progress, SearchHit
from server.cli_common import JsonOpt, StateDir, WorkspaceOpt, cli_settings, fail
from server.cli_daemon import _stop_daemon, daemon_app, token_app
from server.cli_doctor import doctor
from server.cli_explain import explain
from server.cli_indexes import forget, list_indexes
from server.cli_output import context_json, print_context, print_search, print_status, public_hit
from server.cli_remote import remote_app

if TYPE_CHECKING:
    from indexer.core.settings import Settings
    from indexer.workspace import Workspace
    from server.daemon.remote import RemoteWorkspace

app = typer.Typer(
    name="forge-indexer",
    help="Local semantic code index: index a workspace, then search it. Nothing leaves the machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global_options(
    log_format: Annotated[str | None, typer.Option(
        "--log-format", metavar="text|json",
        help="Log lines as text, or as one JSON object per line with request ids "
        "(default: the logFormat setting). Passed on to a daemon this command starts.")] = None,
) -> None:
    """Local semantic code index: index a workspace, then search it. Nothing leaves the machine."""
    import os

    from indexer.core.settings import ENV_PREFIX
    from server.logs import LOG_FORMATS, configured_format, use_format

    if log_format is not None:
        if log_format not in LOG_FORMATS:
            raise fail(f"--log-format must be text or json, not {log_format!r}")
        os.environ[ENV_PREFIX + "LOG_FORMAT"] = log_format  # `lsp` and spawned daemons read it
    use_format(configured_format(log_format))

RevOpt = Annotated[str | None, typer.Option(
    "--rev", help="A git revision (branch, tag, commit): its own index, read from the repository's "
    "objects without checking it out. Always in-process, never through the daemon.")]


def _open(path: Path, state_dir: Path | None, *, daemon: bool = True, progress: bool = False,
          rev: str | None = None, create: bool = True, for_status: bool = False) -> RemoteWorkspace | Workspace:
    """The workspace's daemon if one runs (a `RemoteWorkspace`), else the index in-process:
    both are `WorkspaceLike`s, so `search`, `context` and `status` print the same way from either.

    `create=False` (the read-only commands): a folder never indexed gets `NotIndexed`, and
    nothing is created on disk for it. `for_status`: an index in-process is opened, since its
    vector count needs Chroma, which needs the model's dimension (a daemon has it open)."""
    root = path.expanduser().resolve()
    settings = cli_settings(root, state_dir)
    if daemon and rev is None:
        from server.daemon.remote import connect

        remote = connect(root, settings, progress=progress)
        if remote is not None:
            return remote
    return _open_local(root, settings, rev=rev, create=create, for_status=for_status)


def _open_local(root: Path, settings: Settings, *, rev: str | None, create: bool, for_status: bool) -> Workspace:
    from indexer.workspace import Workspace
    from server.auth.remote_secrets import lookup

    ws = Workspace(root, settings, secrets=lookup(settings), rev=rev, create=create)
    if for_status and (ws.state_dir / "index.sqlite").is_file():
        try:
            ws.open_store()
        except BaseException:
            ws.close()
            raise
    return ws


@app.command()
def index(
    path: Annotated[Path, typer.Argument(help="Folder to index.")] = Path("."),
    json_out: JsonOpt = False,
    state_dir: StateDir = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Discard the existing index first.")] = False,
    rev: RevOpt = None,
) -> None:
    """Index PATH (incrementally: unchanged files are not re-read or re-embedded)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    try:
        if rebuild and rev is None:
            _stop_daemon(path.expanduser().resolve(), state_dir, quiet=True)
        ws = _open(path, state_dir, daemon=not rebuild, progress=True, rev=rev)
    except ForgeError as exc:
        raise fail(str(exc)) from None
    from server.daemon.remote import RemoteWorkspace

    if isinstance(ws, RemoteWorkspace):  # the daemon indexes; its progress is not ours to draw
        _index_remote(ws, json_out)
        return
    with ws:
        if rebuild:
            ws.discard_index()
        bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), transient=True, console=None,
                  disable=not sys.stderr.isatty())
        files = bar.add_task("Files", total=None)
        chunks = bar.add_task("Embedding", total=None, visible=False)

        def tick(p: Progress) -> None:
            # Phase 1 stores files (searchable lexically at once); phase 2 embeds chunks.
            if p.phase == "embed":
                bar.update(chunks, completed=p.chunks_done, total=p.chunks_total or None, visible=True,
                           description="Embedding chunks")
            elif p.phase != "done":
                bar.update(files, completed=p.files_done, total=p.files_total or None,
                           description=f"Files ({p.chunks_done} chunks stored)")

        try:
            with bar:
                summary = ws.index(on_progress=tick)
        except ForgeError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted; what was indexed so far is kept.") from None
    data = summary.to_json()
    if json_out:
        typer.echo(json.dumps(data, indent=2))
        return
    secs = summary.seconds
    typer.echo(
        f"{summary.files_indexed} files indexed, {summary.files_unchanged} unchanged, "
        f"{summary.files_skipped} skipped, {summary.files_deleted} deleted; "
        f"{summary.chunks_stored} chunks stored, {summary.chunks_embedded} embedded "
        f"({summary.tokens_embedded} tokens), "
        f"{summary.chunks_reused} reused; {secs['total']:.1f}s "
        f"(embed {secs['embed']:.1f}s)"
    )
    if summary.errors:
        typer.echo(f"{len(summary.errors)} files failed (see --json for reasons)", err=True)


def _index_remote(ws: RemoteWorkspace, json_out: bool) -> None:
    """`index` through the daemon: it reindexes, this process shows its progress."""
    import time

    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    bar = Bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
              TimeElapsedColumn(), transient=True, disable=not sys.stderr.isatty())
    task = bar.add_task(f"Indexing (daemon pid {ws.pid})", total=100)

    def tick(value: dict[str, Any]) -> None:
        if isinstance(value.get("percentage"), int | float):
            bar.update(task, completed=value["percentage"])
        if value.get("message"):
            bar.update(task, description=str(value["message"])[:60])

    started = time.monotonic()
    try:
        with ws, bar:
            result = ws.index(on_progress=tick)
    except ForgeError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; the daemon goes on indexing in the background.") from None
    result["seconds"] = round(time.monotonic() - started, 2)
    st = result["status"]
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(
        f"indexed by the daemon (pid {ws.pid}): {st.get('files')} files, {st.get('chunks')} chunks, "
        f"{st.get('vectors')} vectors; {result['seconds']:.1f}s"
        + ("" if result["done"] else " (still running)")
    )
    if st.get("last_error"):
        typer.echo(f"last error: {st['last_error']}", err=True)


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="What to look for, in words or code.")] = None,
    workspace: WorkspaceOpt = Path("."),
    k: Annotated[int, typer.Option("-k", "--limit", help="Number of results.", min=1, max=MAX_RESULTS)] = 10,
    lang: Annotated[list[str] | None, typer.Option("--lang", help="Only these languages (repeatable).")] = None,
    path_glob: Annotated[list[str] | None, typer.Option("--path", help="Only paths matching this glob (repeatable).")] = None,
    queries: Annotated[Path | None, typer.Option("--queries", help="File with one query per line; prints JSON lines.")] = None,
    mode: Annotated[str, typer.Option("--mode", help=f"{modes_in_words()}.")] = "hybrid",
    min_score: Annotated[float, typer.Option(
        "--min-score", min=0.0, max=1.0,
        help="Drop results whose relevance score (0-1, see docs/search.md) is below this.")] = 0.0,
    json_out: JsonOpt = False,
    state_dir: StateDir = None,
    rev: RevOpt = None,
) -> None:
    """Search the index of a workspace."""
    if not mode_ok(mode):
        raise fail(f"--mode must be {modes_in_words()}, not {mode!r}")
    if (query is None) == (queries is None):
        raise fail("give a QUERY or --queries FILE (one of them)")
    try:
        with _open(workspace, state_dir, rev=rev, create=False) as ws:

            def run(q: str) -> list[SearchHit]:
                return ws.search(q, limit=k, languages=lang, paths=path_glob, mode=mode, min_score=min_score)

            if queries is not None:
                try:
                    lines = [q.strip() for q in queries.read_text(encoding="utf-8").splitlines()]
                except OSError as exc:
                    raise ForgeError(f"cannot read --queries file: {exc}") from exc
                for q in filter(None, lines):
                    typer.echo(json.dumps({"query": q, "results": [public_hit(h) for h in run(q)]}))
                return
            assert query is not None
            hits = run(query)
    except ForgeError as exc:
        raise fail(str(exc)) from None
    print_search(query, hits, as_json=json_out, root=workspace.expanduser().resolve())


@app.command()
def context(
    query: Annotated[str | None, typer.Argument(help="What the context is for.")] = None,
    workspace: WorkspaceOpt = Path("."),
    budget: Annotated[int, typer.Option("--budget", help="Token budget.", min=MIN_BUDGET)] = 2048,
    file: Annotated[str | None, typer.Option("--file", help="Context around this file (with --line): relative to the current folder, or else to the workspace.")] = None,
    line: Annotated[int | None, typer.Option("--line", help="1-based line in --file.", min=1)] = None,
    json_out: JsonOpt = False,
    state_dir: StateDir = None,
) -> None:
    """Retrieve code context for QUERY (or around --file/--line), packed into --budget tokens."""
    from server.cli_paths import check_context_file, workspace_file

    if (file is None) != (line is None):
        raise fail("--file and --line go together: --file F --line N is the code to get context around")
    root = workspace.expanduser().resolve()
    try:
        rel = workspace_file(root, file) if file is not None else None
        with _open(workspace, state_dir, create=False) as ws:
            data = context_json(ws.context(query, path=rel, line=line, budget=budget))
        if rel is not None:
            check_context_file(root, rel, data)
        data.pop("file_indexed", None)
    except ForgeError as exc:
        raise fail(str(exc)) from None
    print_context(query, data, as_json=json_out)


@app.command()
def status(workspace: WorkspaceOpt = Path("."), json_out: JsonOpt = False, state_dir: StateDir = None,
           rev: RevOpt = None) -> None:
    """Show what is indexed for a workspace."""
    try:
        if rev is not None:  # never through the daemon
            root = workspace.expanduser().resolve()
            with _open_local(root, cli_settings(root, state_dir), rev=rev, create=False, for_status=True) as local:
                data = local.status()
                # "<ref> <commit>" of the last `index --rev`
                indexed = (local.state_dir / "index.sqlite").is_file()
                data["revision"] = local.store.sql.get_meta("git_revision") if indexed else None
        else:
            with _open(workspace, state_dir, create=False, for_status=True) as ws:
                data = ws.status()
    except NotIndexed as exc:  # a question with an answer: exit status 0
        root = workspace.expanduser().resolve()
        if json_out:
            typer.echo(json.dumps({"root": str(root), "indexed": False, "files": 0, "chunks": 0, "symbols": 0,
                                   "vectors": None, "last_indexed": None, "message": str(exc)}, indent=2))
        else:
            typer.echo(str(exc))
        return
    except ForgeError as exc:
        raise fail(str(exc)) from None
    print_status(data, as_json=json_out)


def _pause_or_resume(workspace: Path, state_dir: Path | None, json_out: bool, *, pause: bool) -> None:
    from server.daemon.remote import connect

    root = workspace.expanduser().resolve()
    try:
        ws = connect(root, cli_settings(root, state_dir))
        if ws is None:
            raise ForgeError(
                f"no daemon serves {root}, so nothing indexes it in the background"
                + (" to pause" if pause else " and nothing is paused")
                + " (an editor serving it without a daemon has its own Pause/Resume Indexing command)."
            )
        with ws:
            result = ws.pause() if pause else ws.resume()
    except ForgeError as exc:
        raise fail(str(exc)) from None
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(f"{result.get('message')} (daemon pid {ws.pid})")


@app.command()
def pause(workspace: WorkspaceOpt = Path("."), json_out: JsonOpt = False, state_dir: StateDir = None) -> None:
    """Pause the daemon's background indexing of a workspace (changes wait; search keeps working)."""
    _pause_or_resume(workspace, state_dir, json_out, pause=True)


@app.command()
def resume(workspace: WorkspaceOpt = Path("."), json_out: JsonOpt = False, state_dir: StateDir = None) -> None:
    """Resume background indexing paused by `pause` (or by an editor's Pause Indexing command)."""
    _pause_or_resume(workspace, state_dir, json_out, pause=False)


@app.command()
def model(json_out: JsonOpt = False) -> None:
    """Show which embedding model is in use and where it is."""
    from indexer.embed.model import model_info

    settings, warnings = load_settings(Path.cwd())
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    try:
        info = model_info(settings)
    except ForgeError as exc:
        raise fail(str(exc)) from None
    if json_out:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    for key, value in info.items():
        typer.echo(f"{key:>16}: {value}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lsp(ctx: typer.Context) -> None:
    """Serve the Language Server Protocol on stdio (editors start this): through the
    workspace's shared daemon, started if needed, or in this process (--no-daemon)."""
    from server import main as server_main

    raise typer.Exit(server_main(list(ctx.args)))


@app.command()
def mcp(workspace: WorkspaceOpt = Path("."), state_dir: StateDir = None) -> None:
    """Serve a workspace's index to coding agents as MCP tools on stdio (search, context,
    find_symbol, index_status): through its shared daemon, or in this process. See docs/mcp.md."""
    from server.mcp_server import serve

    raise typer.Exit(serve(workspace, state_dir))


app.command("doctor")(doctor)
app.command("explain")(explain)
app.command("list")(list_indexes)
app.command("forget")(forget)
app.add_typer(daemon_app, name="daemon")
app.add_typer(token_app, name="token")
app.add_typer(remote_app, name="remote-secret")


def main(argv: list[str] | None = None) -> None:
    import logging

    from server.cli_usage import run_app

    # The indexer's repair notices ("rebuilding it from the cache...") as one line each.
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    raise SystemExit(run_app(app, argv))


if __name__ == "__main__":
    # As the installed `forge-indexer` command does: the daemon client first (server.cli_fast).
    from server.cli_fast import main as entry

    entry()
