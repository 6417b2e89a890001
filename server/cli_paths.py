"""Files named on the command line (`context --file`, `explain PATH`), resolved one way.

A relative name is relative to the current folder when that lands inside the workspace
(what a shell's tab completion gives) and names a file there or none in the workspace,
else to the workspace named with `-w`; the result is
the workspace-relative POSIX path the index keys files by. Standard library only: the CLI's
daemon client (`server.cli_fast`) resolves `--file` here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from indexer.core.errors import ForgeError


def workspace_file(root: Path, name: str | Path) -> str:
    """`name` as a path relative to `root` (which is resolved); `ForgeError` if it is outside."""
    full = Path(name).expanduser()
    if not full.is_absolute():
        here, there = Path.cwd() / full, root / full
        inside = here.parent.resolve().is_relative_to(root)
        # The current folder's file if there is one (or the workspace has none of that name).
        full = here if inside and (here.exists() or here.is_symlink() or not there.exists()) else there
    # Resolve the folder, not the file: a symlink is named as itself.
    full = full.parent.resolve() / full.name
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        raise ForgeError(f"{full} is not inside the workspace {root}; name the workspace with -w") from None


def check_context_file(root: Path, rel: str, data: dict[str, Any]) -> None:
    """A `context --file` answer whose file the index does not hold is an error, not an empty
    packing: say whether the file is missing or only not indexed. Drops the flag from `data`."""
    if data.pop("file_indexed", None) is not False:
        return
    if not (root / rel).exists():
        raise ForgeError(f"{rel} does not exist in {root}")
    raise ForgeError(
        f"{rel} is not in the index of {root}: `forge-indexer explain {root / rel} -w {root}` says why "
        f"(a new file is indexed by `forge-indexer index {root}`)"
    )
