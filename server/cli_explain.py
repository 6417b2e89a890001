"""`forge-indexer explain PATH`: whether discovery indexes a file, and why (not).

It applies the same rules an index run does (ignore files, names, size, content, secrets)
to one path, reading the file the way the indexer would, and says which rule decided. Only
light modules are imported at module level: the CLI must start fast, and the indexer's
modules are imported inside the command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from indexer.core.errors import ForgeError
from server.cli_common import JsonOpt, StateDir, WorkspaceOpt, cli_settings, fail

OVERRIDE_HINT = ("to index it anyway, add a pattern that matches it to indexSecretFiles in your user "
                 "config (~/.config/forge-indexer/config.toml) or FORGE_INDEXER_INDEX_SECRET_FILES")


def _decide(root: Path, rel: str, state_dir: Path | None) -> dict[str, Any]:
    from indexer.core.types import FileError, Skipped, SourceFile
    from indexer.files.discover import check_path, load_source, secret_allowed, secret_reason
    from indexer.files.ignore import IgnoreRules
    from indexer.files.secret_scan import scan

    settings = cli_settings(root, state_dir)
    out: dict[str, Any] = {"path": rel, "indexed": False, "reason": None, "override": None, "hint": None}
    target = root / rel
    if not target.exists() and not target.is_symlink():
        raise FileNotFoundError(f"{target} does not exist")
    if target.is_dir() and not target.is_symlink():
        out["reason"] = "a folder: explain one file in it"
        return out
    rules = IgnoreRules.load(root, settings)
    found = check_path(root, rel, settings, rules)
    if found is None:
        out["reason"] = ("ignored by the ignore rules (.gitignore, .git/info/exclude, .forgeignore, "
                         "the exclude setting or the built-in excludes)")
        return out
    if isinstance(found, SourceFile):
        found = load_source(found, settings)  # type: ignore[assignment]
    if isinstance(found, FileError):
        out["reason"] = f"cannot be read: {found.error}"
    elif isinstance(found, Skipped):
        out["reason"] = found.reason
        if found.reason.startswith("may hold secrets"):
            out["hint"] = OVERRIDE_HINT
    else:
        out["indexed"] = True
        if secret_allowed(rel, settings):
            text = getattr(found, "text", "")
            why = secret_reason(rel) or (f"may hold secrets ({f})" if (f := scan(text, rel)) else None)
            if why is not None:
                out["override"] = f"{why}, but indexSecretFiles matches it"
    return out


def explain(
    path: Annotated[Path, typer.Argument(
        help="The file to explain (relative to the current folder, or else to the workspace).")],
    workspace: WorkspaceOpt = Path("."),
    state_dir: StateDir = None,
    json_out: JsonOpt = False,
) -> None:
    """Say whether a file is indexed and which rule decided (ignore files, size, content, secrets)."""
    from server.cli_paths import workspace_file

    root = workspace.expanduser().resolve()
    try:
        rel = workspace_file(root, path)
    except ForgeError as exc:
        raise fail(str(exc)) from None
    try:
        out = _decide(root, rel, state_dir)
    except OSError as exc:
        raise fail(str(exc)) from None
    if json_out:
        typer.echo(json.dumps(out, indent=2))
        return
    if out["indexed"]:
        typer.echo(f"{rel}: indexed" + (f" ({out['override']})" if out["override"] else ""))
    else:
        typer.echo(f"{rel}: not indexed: {out['reason']}")
    if out["hint"]:
        typer.echo(f"  {out['hint']}")
