"""`forge/pause` and `forge/resume` (and their `forgeIndexer.*` commands): hold background
indexing while a user needs the machine, then let it go on where it stopped."""

from __future__ import annotations

from typing import Any

from server.errors import rpc_errors
from server.params import PauseParams, parse_params
from server.server import ForgeLanguageServer

PAUSE, RESUME = "forge/pause", "forge/resume"
PAUSE_COMMAND, RESUME_COMMAND = "forgeIndexer.pause", "forgeIndexer.resume"


def register(ls: ForgeLanguageServer) -> None:
    """Register the pause and resume requests and commands."""

    @ls.feature(PAUSE)
    @rpc_errors(PAUSE)
    async def pause(ls: ForgeLanguageServer, params: Any) -> dict[str, Any]:
        """Hold background indexing of every folder this server indexes."""
        parse_params(PauseParams, params)  # no parameters: anything else is refused
        return ls.worker.pause()

    @ls.command(PAUSE_COMMAND)
    @rpc_errors(PAUSE_COMMAND)
    async def pause_command(ls: ForgeLanguageServer, *args: Any) -> dict[str, Any]:
        """`forge/pause` as a command."""
        return ls.worker.pause()

    @ls.feature(RESUME)
    @rpc_errors(RESUME)
    async def resume(ls: ForgeLanguageServer, params: Any) -> dict[str, Any]:
        """Let held indexing run again."""
        parse_params(PauseParams, params)
        return ls.worker.resume()

    @ls.command(RESUME_COMMAND)
    @rpc_errors(RESUME_COMMAND)
    async def resume_command(ls: ForgeLanguageServer, *args: Any) -> dict[str, Any]:
        """`forge/resume` as a command."""
        return ls.worker.resume()
