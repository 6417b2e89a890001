"""`forge-indexer daemon ...` and `forge-indexer token rotate`."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from indexer.core.errors import ForgeError
from server.cli_common import JsonOpt, StateDir, WorkspaceOpt, cli_settings, fail

daemon_app = typer.Typer(
    help="Run, list and stop the per-workspace daemon that editors and the CLI share.",
    no_args_is_help=False,
)
token_app = typer.Typer(help="Manage the workspace secret that guards the daemon's endpoint.",
                        no_args_is_help=True)


def _parse_tcp(value: str) -> tuple[str, int]:
    """`--tcp HOST:PORT` → (numeric loopback address, port); a host name is resolved here,
    before anything starts, and refused unless every address it has is loopback."""
    from server.loopback import parse_loopback

    return parse_loopback(value, "--tcp", 7997)


@daemon_app.callback(invoke_without_command=True)
def daemon(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("."),
    state_dir: StateDir = None,
    idle_timeout: Annotated[int | None, typer.Option(
        "--idle-timeout", min=0, help="Stop after this many seconds with no client (default: the "
        "daemonIdleTimeoutS setting; 0: never).")] = None,
    tcp: Annotated[str | None, typer.Option(
        "--tcp", help="Also accept HOST:PORT on a loopback address instead of the Unix socket "
        "(same proofs; see docs/security.md).")] = None,
    background: Annotated[bool, typer.Option("--background", hidden=True)] = False,
    metrics: Annotated[str | None, typer.Option(
        "--metrics", metavar="HOST:PORT", help="Serve Prometheus metrics on this loopback address, "
        "e.g. 127.0.0.1:9464 (default: the metricsAddress setting; see docs/operations.md).")] = None,
) -> None:
    """Run the daemon for a workspace in the foreground (editors start it by themselves)."""
    if ctx.invoked_subcommand is not None:
        return
    from server.daemon.client import find_daemon
    from server.daemon.paths import log_file, paths_for
    from server.daemon.service import run_daemon
    from server.logs import context_handler, setup_logging

    root = workspace.expanduser().resolve()
    logged = False  # the daemon's log exists: errors go there too
    stderr_handler: logging.Handler | None = None
    try:
        address = _parse_tcp(tcp) if tcp else None  # first: a bad address stops nothing
        settings = cli_settings(root, state_dir)
        if metrics is not None:
            settings = settings.model_copy(update={"metrics_address": metrics})
        if not root.is_dir():
            raise ForgeError(f"{root} is not a folder")
        paths = paths_for(root, settings)
        running = find_daemon(paths)
        if running is not None:
            raise ForgeError(f"a daemon already serves {root} (pid {running.pid})")
        logs = log_file(settings, paths.id)
        setup_logging(str(logs), "INFO", settings.log_format)
        logged = True
        if not background:
            stderr_handler = logging.StreamHandler(sys.stderr)
            context_handler(stderr_handler, settings.log_format, "%(levelname)s %(message)s")
            logging.getLogger().addHandler(stderr_handler)
            typer.echo(f"daemon for {root}; log: {logs}", err=True)
        timeout = settings.daemon_idle_timeout_s if idle_timeout is None else idle_timeout
        code = run_daemon(paths, settings, idle_timeout_s=timeout, tcp=address)
    except ForgeError as exc:
        # Into the daemon's log, if it has one; on the terminal once, as `error: ...`.
        if stderr_handler is not None:
            logging.getLogger().removeHandler(stderr_handler)
        if logged:
            logging.getLogger(__name__).error("%s", exc)
        raise fail(str(exc)) from None
    raise typer.Exit(code)


def _connect(root: Path, state_dir: Path | None) -> Any:
    from server.daemon.remote import connect

    return connect(root, cli_settings(root, state_dir))


def _stop(remote: Any, *, quiet: bool = False) -> int:
    """Ask a connected daemon to stop and wait until it has exited; its pid."""
    with remote:
        pid: int = remote.pid
        remote.client.request("forge/daemon", {"action": "stop"})
    _wait_exit(pid)
    if not quiet:
        typer.echo(f"stopped the daemon for {remote.root} (pid {pid})")
    return pid


def _stop_daemon(root: Path, state_dir: Path | None, *, quiet: bool = False) -> int | None:
    """Stop the workspace's daemon if one runs; its pid, or None."""
    remote = _connect(root, state_dir)
    return None if remote is None else _stop(remote, quiet=quiet)


@daemon_app.command("stop")
def daemon_stop(workspace: WorkspaceOpt = Path("."), state_dir: StateDir = None,
                all_: Annotated[bool, typer.Option("--all", help="Stop every daemon of yours.")] = False) -> None:
    """Stop the daemon of a workspace (or all of them)."""
    try:
        if all_:
            stopped = [_stop(_open_entry(e, state_dir)) for e in _entries()]
        else:
            stopped = [p for p in [_stop_daemon(workspace.expanduser().resolve(), state_dir)] if p]
    except ForgeError as exc:
        raise fail(str(exc)) from None
    if not stopped:
        typer.echo("no daemon is running" + ("" if all_ else f" for {workspace.expanduser().resolve()}"))


def _entries() -> list[dict[str, Any]]:
    """The registry entries of your live daemons."""
    from server.daemon.client import DaemonUnavailable, find_daemon
    from server.daemon.paths import DaemonPaths, all_registries

    out = []
    for path in all_registries():
        paths = DaemonPaths(id=path.stem, workspace=Path("/"), run=path.parent)
        data = paths.read_registry()
        try:
            if data is not None and find_daemon(paths) is not None:
                out.append(data)
        except DaemonUnavailable as exc:  # an entry no client would trust: say so, list the rest
            logging.getLogger(__name__).warning("%s", exc)
    return out


def _open_entry(entry: dict[str, Any], state_dir: Path | None) -> Any:
    from server.daemon.client import Endpoint
    from server.daemon.remote import open_remote

    root = Path(entry["workspace"])
    endpoint = Endpoint.parse(str(entry["endpoint"]), int(entry["pid"]), entry.get("keyring"),
                              entry.get("auth"), entry.get("keyringProblem"))
    return open_remote(endpoint, str(entry["id"]), root, cli_settings(root, state_dir))


def _wait_exit(pid: int) -> None:
    from indexer.core.processes import process_alive

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return
        time.sleep(0.05)
    raise ForgeError(f"the daemon (pid {pid}) did not stop within 30 s")


@daemon_app.command("status")
def daemon_status(json_out: JsonOpt = False, state_dir: StateDir = None) -> None:
    """List your running daemons: workspace, pid, endpoint, clients, memory."""
    rows = []
    for entry in _entries():
        row = dict(entry)
        try:
            with _open_entry(entry, state_dir) as remote:
                row.update(remote.client.request("forge/daemon", {"action": "info"}))
        except ForgeError as exc:
            row["error"] = str(exc)
        rows.append(row)
    if json_out:
        typer.echo(json.dumps({"daemons": rows}, indent=2))
        return
    if not rows:
        typer.echo("no daemon is running")
    for r in rows:
        typer.echo(
            f"pid {r['pid']}  {r['workspace']}  {r['endpoint']}  clients {r.get('connections', '?')}  "
            f"rss {r.get('rssMb', '?')} MB  up {r.get('uptimeS', '?')} s"
            + ("  peer mode (no keyring)" if r.get("auth") == "peer" else "")
            + (f"  ({r['error']})" if r.get("error") else "")
        )


@token_app.command("rotate")
def token_rotate(workspace: WorkspaceOpt = Path("."), state_dir: StateDir = None) -> None:
    """Replace the workspace's secret; connected clients must re-authenticate."""
    from server.auth import secret as keyring_secret
    from server.daemon.paths import paths_for

    root = workspace.expanduser().resolve()
    try:
        settings = cli_settings(root, state_dir)
        paths = paths_for(root, settings)
        backend = keyring_secret.select_backend(settings.keyring_backend)
        remote = _connect(root, state_dir)  # authenticated with the old secret, before it changes
        keyring_secret.write_secret(paths.id, backend)
        if remote is None:
            typer.echo(f"rotated the secret for {root} (no daemon is running)")
            return
        with remote:
            result = remote.client.request("forge/daemon", {"action": "rotate"})
    except ForgeError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"rotated the secret for {root}; the daemon (pid {remote.pid}) asked "
               f"{result.get('reauthenticating', 0)} connected clients to re-authenticate")
