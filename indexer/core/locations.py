"""Where forge-indexer keeps things, and the raw config files: no pydantic here.

`indexer.core.settings` validates these sources into the one `Settings` model. The CLI's daemon
client (`server.cli_fast`) reads the few keys it needs straight from the same files and
variables, so that a search through a running daemon does not load pydantic.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "forge-indexer"
WORKSPACE_CONFIG_FILE = ".forge-indexer.toml"
ENV_PREFIX = "FORGE_INDEXER_"


def default_state_root() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME))


def private_dir(path: Path) -> None:
    """Create `path` (and parents) readable by this user only: an index holds a copy of the code."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)


def workspaces_dir(state_root: Path) -> Path:
    """The folder holding one index folder per workspace under a state root."""
    return Path(state_root).expanduser() / "workspaces"


def default_cache_root() -> Path:
    env = os.environ.get(ENV_PREFIX + "CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir(APP_NAME))


def user_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def read_toml(path: Path, warnings: list[str]) -> dict[str, Any]:
    """A config file's table ({} when absent); a file that cannot be read is a warning."""
    try:
        if not path.is_file():
            return {}
    except OSError as exc:  # e.g. a config folder this user may not enter
        warnings.append(f"{path}: ignored ({exc.strerror or exc}); fix its permissions or delete it.")
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        warnings.append(f"{path}: ignored ({exc}); fix the file or delete it.")
        return {}
