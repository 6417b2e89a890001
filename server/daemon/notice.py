"""The one-line notice that the shared daemon runs without a keyring, shown once per user.

A daemon that finds no usable OS keyring runs in peer mode (docs/security.md, "Without a
keyring") and records why in its registry entry. The first client to meet such a daemon
tells the user in one line: an editor's relay with `window/showMessage`, the CLI on
stderr. A marker file per reason in the user's state dir (`notices/keyring-<reason>`,
created with O_EXCL, so two editors starting at once show it once between them) keeps
it from coming back on every editor start; a new reason is a new notice.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from indexer.core.locations import default_state_root

#: What each `KeyringUnavailable.reason` means, in a few words.
WHY = {
    "none": "none found",
    "locked": "it is locked",
    "timeout": "it did not answer",
    "failed": "it failed",
    "entry": "its entry is unusable",
}


def text(reason: str | None) -> str:
    """The notice: one line, under 150 characters, saying where to read more."""
    why = WHY.get(reason or "", "unusable")
    return (f"forge-indexer: no OS keyring ({why}): the shared daemon is guarded by your private "
            "socket and uid check; see docs/security.md")


def markers_dir() -> Path:
    return default_state_root() / "notices"


def first_time(reason: str | None) -> bool:
    """True once per user and reason (and whenever the marker cannot be written: better
    shown again than never)."""
    name = "keyring-" + "".join(c for c in (reason or "unknown") if c.isalnum() or c == "-")[:32]
    try:
        folder = markers_dir()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    except OSError:
        return True
    return True


def once(reason: str | None) -> str | None:
    """The notice if this user has not seen it for this reason yet, else None."""
    return text(reason) if first_time(reason) else None


def to_stderr(reason: str | None) -> None:
    """The CLI's way: one line on stderr, the first time."""
    message = once(reason)
    if message:
        print(message, file=sys.stderr, flush=True)
