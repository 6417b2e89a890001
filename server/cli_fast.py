"""The `forge-indexer` command's entry point: a daemon client first, the full CLI if needed.

`search`, `context` and `status` on a workspace whose daemon runs only send one request,
so they are answered here with the standard library, keyring and the daemon's own client
(`server.daemon.remote`), without loading typer, pydantic, the model, Chroma, numpy or
tree-sitter: well under a tenth of a second of start-up instead of most of a second.

Everything else goes to the full CLI (`server.cli`), unchanged: other commands, `--help`,
options this parser does not take (`--rev`, `--queries`, `--log-format`), values the full
CLI would refuse (it prints the error), no daemon for the workspace (it works in-process),
and any trouble reaching the daemon before a request was sent (it retries and reports).
Once a request is sent its answer, or its error, is final: nothing runs twice.

The options mirror `server.cli`'s; `tests/unit/test_cli_fast.py` holds the two together.
Only the settings that locate the daemon are read here (`stateDir`, `sharedDaemon`,
`keyringBackend`, from the same sources as `indexer.core.settings.load_settings`); anything
unusual in them (an unreadable config file, a value that is not plainly valid) sends the
command to the full CLI, which validates and warns as always.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.core.errors import ForgeError
from indexer.core.limits import MIN_BUDGET, limit_ok, min_score_ok, mode_ok
from indexer.core.locations import ENV_PREFIX, WORKSPACE_CONFIG_FILE, read_toml, user_config_file

COMMANDS = ("search", "context", "status")
#: Keys read here, by field name, with their spellings in config files. `state_dir` and
#: `keyring_backend` are user-only (`indexer.core.settings.USER_ONLY_KEYS`): a workspace file
#: that names them sends the command to the full CLI, which ignores them with a warning.
KEYS = {"state_dir": ("state_dir", "stateDir"), "shared_daemon": ("shared_daemon", "sharedDaemon"),
        "keyring_backend": ("keyring_backend", "keyringBackend")}
USER_ONLY = frozenset({"state_dir", "keyring_backend"})
#: What pydantic accepts as a boolean in a string (an environment variable).
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


class Defer(Exception):
    """This invocation is the full CLI's to answer."""


@dataclass(frozen=True)
class ClientSettings:
    """The settings that locate and open a daemon (`server.daemon.remote.ClientSettings`)."""

    state_dir: Path | None = None
    shared_daemon: bool = True
    keyring_backend: str | None = None


def _plain(key: str, value: Any, *, from_env: bool) -> Any:
    """`value` as the settings model would take it, or `Defer` if that needs pydantic."""
    if key == "shared_daemon":
        if isinstance(value, bool):
            return value
        if from_env and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise Defer
    if not isinstance(value, str) or (key == "state_dir" and not value):
        raise Defer
    return Path(value) if key == "state_dir" else value


def client_settings(root: Path, state_dir: Path | None) -> ClientSettings:
    """The daemon-locating keys, layered like `load_settings`: user file < workspace file
    (no user-only keys) < environment < the `--state-dir` flag."""
    warnings: list[str] = []
    user = read_toml(user_config_file(), warnings)
    workspace = read_toml(root / WORKSPACE_CONFIG_FILE, warnings)
    if warnings:
        raise Defer  # the full CLI prints them
    values: dict[str, Any] = {}
    for layer, trusted in ((user, True), (workspace, False)):
        for key, spellings in KEYS.items():
            for name in spellings:
                if name in layer:
                    if not trusted and key in USER_ONLY:
                        raise Defer
                    values[key] = _plain(key, layer[name], from_env=False)
    for key in KEYS:
        raw = os.environ.get(ENV_PREFIX + key.upper())
        if raw is not None:
            values[key] = _plain(key, raw, from_env=True)
    if state_dir is not None:
        values["state_dir"] = state_dir
    return ClientSettings(**values)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print usage and exit 2
        raise Defer


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="forge-indexer", add_help=False, allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True)
    common = _Parser(add_help=False, allow_abbrev=False)
    common.add_argument("-w", "--workspace", type=Path, default=Path("."))
    common.add_argument("--json", dest="json_out", action="store_true")
    common.add_argument("--state-dir", type=Path)
    s = sub.add_parser("search", parents=[common], add_help=False, allow_abbrev=False)
    s.add_argument("query")
    s.add_argument("-k", "--limit", dest="k", type=int, default=10)
    s.add_argument("--lang", action="append")
    s.add_argument("--path", dest="path_glob", action="append")
    s.add_argument("--mode", default="hybrid")
    s.add_argument("--min-score", type=float, default=0.0)
    c = sub.add_parser("context", parents=[common], add_help=False, allow_abbrev=False)
    c.add_argument("query", nargs="?")
    c.add_argument("--budget", type=int, default=2048)
    c.add_argument("--file")
    c.add_argument("--line", type=int)
    sub.add_parser("status", parents=[common], add_help=False, allow_abbrev=False)
    return p


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The invocation, if it is one this path answers (else `Defer`)."""
    if not argv or argv[0] not in COMMANDS or any(a in ("-h", "--help") for a in argv):
        raise Defer
    # `--` would make the two parsers disagree about what is an option: leave it to typer.
    if "--" in argv:
        raise Defer
    args = _parser().parse_args(list(argv))
    # The full CLI's own checks: values it refuses get its error message, not ours.
    if args.command == "search" and not (
        limit_ok(args.k) and mode_ok(args.mode) and min_score_ok(args.min_score)
    ):
        raise Defer
    if args.command == "context" and (args.budget < MIN_BUDGET or (args.line is not None and args.line < 1)
                                      or (args.file is None) != (args.line is None)):
        raise Defer
    return args


def answer(argv: Sequence[str]) -> int:
    """Answer through the workspace's daemon: the exit status, or `Defer`."""
    args = parse(argv)
    from server import cli_output
    from server.cli_paths import check_context_file, workspace_file
    from server.daemon.remote import connect

    root = args.workspace.expanduser().resolve()
    try:
        rel = workspace_file(root, args.file) if args.command == "context" and args.file else None
    except ForgeError:
        raise Defer from None  # the full CLI says so, before looking for a daemon, as always
    settings = client_settings(root, args.state_dir)
    try:
        ws = connect(root, settings)
    except ForgeError:
        raise Defer from None  # the full CLI says what is wrong with the daemon or keyring
    if ws is None:
        raise Defer  # no daemon: the full CLI works in-process
    try:
        with ws:
            if args.command == "search":
                hits = ws.search(args.query, limit=args.k, languages=args.lang, paths=args.path_glob,
                                 mode=args.mode, min_score=args.min_score)
                cli_output.print_search(args.query, hits, as_json=args.json_out, root=root)
            elif args.command == "context":
                data = cli_output.context_json(ws.context(args.query, path=rel, line=args.line,
                                                          budget=args.budget))
                if rel is not None:
                    check_context_file(root, rel, data)
                data.pop("file_indexed", None)
                cli_output.print_context(args.query, data, as_json=args.json_out)
            else:
                cli_output.print_status(ws.status(), as_json=args.json_out)
    except ForgeError as exc:
        cli_output.error_line(str(exc))
        return 1
    return 0


def main() -> None:
    """`forge-indexer`: this fast path when it applies, else the full CLI."""
    argv = sys.argv[1:]
    try:
        code = answer(argv)
    except Defer:
        from server.cli import main as full_cli

        full_cli(argv)
        return
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    raise SystemExit(code)


if __name__ == "__main__":
    main()
