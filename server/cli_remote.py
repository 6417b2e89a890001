"""`forge-indexer remote-secret set|delete chroma|embedder`: credentials for remote engines."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from indexer.core.errors import ForgeError
from server.cli_common import cli_settings, fail

remote_app = typer.Typer(
    help="Store or delete the credential sent to a remote Chroma server or embeddings server "
    "(kept in the OS keyring, bound to the server's URL).",
    no_args_is_help=True,
)
Target = Annotated[str, typer.Argument(help="chroma or embedder.")]
Where = Annotated[Path, typer.Option("-w", "--workspace", help="Workspace whose settings name the server.")]


@remote_app.command("set")
def set_credential(target: Target, workspace: Where = Path(".")) -> None:
    """Read the header value from the terminal (hidden) or one line of stdin, and store it."""
    from server.auth.remote_secrets import store_credential

    settings = cli_settings(workspace.expanduser().resolve(), None)
    # Never an argument: process arguments are visible to every user of the machine.
    value = getpass.getpass(f"{target} credential: ") if sys.stdin.isatty() else sys.stdin.readline()
    try:
        entry = store_credential(settings, target, value.strip())
    except ForgeError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"stored in the keyring as {entry}")


@remote_app.command("delete")
def delete_credential_cmd(target: Target, workspace: Where = Path(".")) -> None:
    """Remove the stored credential for the configured server."""
    from server.auth.remote_secrets import delete_credential

    settings = cli_settings(workspace.expanduser().resolve(), None)
    try:
        found = delete_credential(settings, target)
    except ForgeError as exc:
        raise fail(str(exc)) from None
    typer.echo("deleted" if found else "no credential was stored for that server")
