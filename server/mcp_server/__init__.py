"""`forge-indexer mcp`: the workspace's index as Model Context Protocol tools, on stdio.

Coding agents (Claude Code, Codex CLI, Continue, Cursor...) start this command and call its
tools: `search`, `context`, `find_symbol`, `index_status` (`server.mcp_server.tools`).
Answers come from the workspace's shared daemon, started if none runs, or from this
process when no daemon can be used (`server.mcp_server.backend`); that is settled on a
worker thread while the client's `initialize` is answered.

stdout is the MCP channel: logs go to stderr, and the SDK's stdio transport points file
descriptor 1 at stderr while it serves, so native code (llama.cpp) cannot write into it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from indexer.core.errors import ForgeError

log = logging.getLogger("server.mcp")


def serve(workspace: Path, state_dir: Path | None = None) -> int:
    """Serve MCP on stdin/stdout until the client closes it; the exit status."""
    from server.logs import configured_format, setup_logging

    setup_logging(None, "INFO", configured_format())  # stderr
    # The SDK logs each request at INFO; the tools' own lines are enough.
    logging.getLogger("mcp").setLevel(logging.WARNING)
    root = workspace.expanduser().resolve()
    try:
        if not root.is_dir():
            raise ForgeError(f"{root} is not a folder: give the workspace to serve with -w PATH")
        from indexer.core.settings import load_settings

        settings, warnings = load_settings(root, {"state_dir": state_dir} if state_dir else None)
        for w in warnings:
            log.warning("%s", w)
        from server.mcp_server.backend import Opening

        backend = Opening(root, settings)
    except ForgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from server.mcp_server.tools import build_server

    try:
        build_server(backend).run("stdio")
    except KeyboardInterrupt:
        pass
    finally:
        backend.close()
    log.info("MCP server for %s stopped", root)
    return 0
