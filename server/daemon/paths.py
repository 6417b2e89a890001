"""Where a workspace's daemon can be found: its id, socket, registry entry and log.

The runtime directory is `$XDG_RUNTIME_DIR/forge-indexer` (per user, usually a tmpfs that
only the user can enter), else the user runtime dir platformdirs gives, else
`/tmp/forge-indexer-<uid>`. It must be owned by the user with mode 0700: a socket there can
only be reached by the user's own processes, and the daemon also checks each peer's uid.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import platformdirs

from indexer.core.errors import ForgeError
from indexer.core.locations import APP_NAME, default_state_root


class StateDirSetting(Protocol):
    """What locating a daemon needs of the settings: `Settings`, or the CLI's daemon client's
    few keys (`server.cli_fast`), which must not load pydantic."""

    @property
    def state_dir(self) -> Path | None: ...

#: Unix socket paths are limited to 107 bytes on Linux (103 on macOS).
MAX_SOCKET_PATH = 100


class RuntimeDirUnsafe(ForgeError):
    """The directory for sockets is not private to this user."""


def private_dir(path: Path) -> Path:
    """Create `path` with mode 0700, or check an existing one is ours and private."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise RuntimeDirUnsafe(f"{path} is not a directory; remove it and try again.")
    if info.st_uid != os.getuid():
        raise RuntimeDirUnsafe(
            f"{path} belongs to uid {info.st_uid}, not to you: another user could reach the "
            "daemon's socket. Remove it, or set XDG_RUNTIME_DIR to a directory of your own."
        )
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and Path(base).is_dir():
        candidate = Path(base) / APP_NAME
    else:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; the fallback below is ours.
            warnings.simplefilter("ignore")
            user_run = Path(platformdirs.user_runtime_dir(APP_NAME))
        candidate = user_run if user_run.parent.is_dir() else Path(f"/tmp/{APP_NAME}-{os.getuid()}")
    if len(str(candidate)) + 30 > MAX_SOCKET_PATH:
        candidate = Path(f"/tmp/{APP_NAME}-{os.getuid()}")
    return private_dir(candidate)


def state_root(settings: StateDirSetting) -> Path:
    return (settings.state_dir or default_state_root()).expanduser().resolve()


def workspace_id(workspace: Path, settings: StateDirSetting) -> str:
    """One daemon per (workspace, state dir): the same folder indexed into two places is two indexes."""
    key = f"{workspace.expanduser().resolve()}\0{state_root(settings)}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class DaemonPaths:
    """The files of one workspace's daemon."""

    id: str
    workspace: Path
    run: Path

    @property
    def socket(self) -> Path:
        return self.run / f"{self.id}.sock"

    @property
    def registry(self) -> Path:
        return self.run / f"{self.id}.json"

    @property
    def spawn_lock(self) -> Path:
        return self.run / f"{self.id}.spawn.lock"

    def read_registry(self) -> dict[str, Any] | None:
        """The entry the daemon wrote, or None. Only a regular file of this user's counts (not
        a symlink): it says whether clients need the secret, so no one else may write it."""
        try:
            fd = os.open(self.registry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
                return None
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = json.loads(fh.read(1024 * 1024).decode("utf-8"))
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)
        return data if isinstance(data, dict) else None


def paths_for(workspace: Path, settings: StateDirSetting) -> DaemonPaths:
    root = workspace.expanduser().resolve()
    return DaemonPaths(id=workspace_id(root, settings), workspace=root, run=runtime_dir())


def log_file(settings: StateDirSetting, daemon_id: str) -> Path:
    """The daemon's log: beside the indexes (it outlives the runtime dir, e.g. a reboot)."""
    return private_dir(state_root(settings) / "daemon-logs") / f"{daemon_id}.log"


def all_registries() -> list[Path]:
    return sorted(runtime_dir().glob("*.json"))
