"""`forge-indexer list` and `forget`: the indexes under the state root, and deleting one.

`forget` refuses while the workspace's daemon runs or any process has the index open (it
deletes holding the index's lock), and asks before deleting unless `--yes`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from indexer.core.errors import ForgeError
from server.cli_common import JsonOpt, StateDir, fail

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _state_root(state_dir: Path | None) -> Path:
    from indexer.core.settings import load_settings
    from server.daemon.paths import state_root

    settings, warnings = load_settings(None, {"state_dir": state_dir} if state_dir else None)
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    return state_root(settings)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


def list_indexes(json_out: JsonOpt = False, state_dir: StateDir = None) -> None:
    """List every index under the state root: workspace, size, files and chunks, last use."""
    from indexer.store.catalog import list_indexes as entries_under

    root = _state_root(state_dir)
    entries = entries_under(root)
    if json_out:
        typer.echo(json.dumps({"state_root": str(root), "indexes": [e.to_json() for e in entries]}, indent=2))
        return
    if not entries:
        typer.echo(f"no indexes under {root}")
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title_justify="left",
                  title=f"indexes under {root}")
    table.add_column("workspace", overflow="fold")
    for name in ("size", "files", "chunks"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("last used", no_wrap=True)
    table.add_column("state", overflow="fold")
    for e in entries:
        where = str(e.workspace) if e.workspace else f"(unknown: {e.state_dir.name})"
        where += f" @ {e.rev}" if e.rev else ""
        state = (f"in use (pid {e.owner_pid})" if e.owner_pid else
                 "ok" if e.workspace_exists else "folder gone" if e.workspace else "unknown")
        table.add_row(where, human_bytes(e.bytes), "-" if e.files is None else str(e.files),
                      "-" if e.chunks is None else str(e.chunks), _when(e.last_used), state)
    # Not a terminal: no colour and no wrapping at 80 columns (paths stay whole for grep).
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(table)


def forget(
    path: Annotated[Path, typer.Argument(
        help="The workspace whose index to delete (it need not exist any more), or an index folder "
        "that `list` shows.")],
    rev: Annotated[str | None, typer.Option("--rev", help="Only the index of this git revision.")] = None,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    state_dir: StateDir = None,
) -> None:
    """Delete the index of a workspace (and its --rev indexes): refused while it is in use."""
    from indexer.core.locations import workspaces_dir
    from indexer.core.settings import Settings
    from indexer.store.catalog import delete_index, indexes_of
    from indexer.workspace import state_dir_for

    root = path.expanduser().resolve()
    state_root = _state_root(state_dir)
    settings = Settings(state_dir=state_root)
    if root.parent == workspaces_dir(state_root).resolve() and root.is_dir():
        entries = indexes_of(state_root, root, rev_dir=root)  # an index folder, named as `list` shows it
    else:
        rev_dir = state_dir_for(root, settings, rev) if rev else None
        entries = indexes_of(state_root, state_dir_for(root, settings), rev_dir)
    if not entries:
        what = f"revision {rev} of {root}" if rev else str(root)
        raise fail(f"{what} has no index under {state_root} (`forge-indexer list` shows the indexes there)")
    workspace = next((e.workspace for e in entries if e.workspace), root)
    try:
        _refuse_if_served(workspace, settings)
    except ForgeError as exc:
        raise fail(str(exc)) from None
    total = sum(e.bytes for e in entries)
    if not yes:
        if not sys.stdin.isatty():
            raise fail(f"deleting the index of {workspace} needs confirmation: add --yes")
        names = "\n".join(f"  {e.state_dir}" for e in entries)
        if not typer.confirm(f"Delete the index of {workspace} ({human_bytes(total)}):\n{names}\n", default=False):
            raise fail("nothing deleted")
    freed = 0
    for e in entries:
        try:
            freed += delete_index(e.state_dir)
        except ForgeError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            raise fail(f"could not delete {e.state_dir}: {exc.strerror or exc}") from None
    if json_out:
        typer.echo(json.dumps({"workspace": str(workspace), "deleted": [str(e.state_dir) for e in entries],
                               "bytes": freed}, indent=2))
    else:
        typer.echo(f"deleted the index of {workspace} ({human_bytes(freed)})")


def _refuse_if_served(workspace: Path, settings: object) -> None:
    """A daemon serving the workspace would re-create (or fail on) what is deleted under it."""
    from server.daemon.client import find_daemon
    from server.daemon.paths import RuntimeDirUnsafe, paths_for

    try:
        endpoint = find_daemon(paths_for(workspace, settings))  # type: ignore[arg-type]
    except (OSError, RuntimeDirUnsafe):
        return
    if endpoint is not None:
        raise ForgeError(
            f"a daemon (pid {endpoint.pid}) serves {workspace}: stop it first with "
            f"`forge-indexer daemon stop -w {workspace}` (and close editors using it), then try again."
        )
