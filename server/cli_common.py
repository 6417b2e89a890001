"""Options and helpers shared by the CLI's command modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from indexer.core.settings import Settings, load_settings

StateDir = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Where indexes live (default: the user state dir; env FORGE_INDEXER_STATE_DIR)."),
]
WorkspaceOpt = Annotated[Path, typer.Option("-w", "--workspace", help="The indexed folder.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")]


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def cli_settings(root: Path, state_dir: Path | None) -> Settings:
    settings, warnings = load_settings(root, {"state_dir": state_dir} if state_dir else None)
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    return settings
