"""forge-indexer's language server: the live index, served over LSP on stdio.

`main()` is what `forge-indexer lsp` and `python -m server` run. Nothing here imports the
indexer at module level: the protocol's stdout has to be moved out of reach of native code
(llama.cpp prints to fd 1) before anything can load it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, BinaryIO

__all__ = ["__version__", "main"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from server.version import version

        return version()
    raise AttributeError(f"module 'server' has no attribute {name!r}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="forge-indexer lsp", description="Serve the forge-indexer language server on stdio."
    )
    p.add_argument("--log-file", metavar="PATH", help="write logs to PATH instead of stderr")
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="log level (default: INFO)",
    )
    p.add_argument("--log-format", choices=["text", "json"], help="text or json lines (default: logFormat)")
    p.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics on this loopback address when serving in this process "
        "(default: metricsAddress; a shared daemon takes `forge-indexer daemon --metrics`)",
    )
    p.add_argument("--stdio", action="store_true", help="accepted for editors that pass it")
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="serve this editor in this process instead of through the shared workspace daemon",
    )
    return p


def _user_settings() -> dict[str, Any]:
    """metricsAddress, otelExporter and lowPriority from the environment and the user config file."""
    try:
        from indexer.core.settings import load_settings

        settings = load_settings(None)[0]
    except Exception:  # reported when the workspace's settings are loaded
        return {}
    return {"metrics_address": settings.metrics_address, "otel_exporter": settings.otel_exporter,
            "low_priority": settings.low_priority}


def main(argv: list[str] | None = None) -> int:
    """Serve an editor on stdio until it says `exit` or goes away.

    Through the workspace's shared daemon when possible (`server.daemon.editor`), else with
    a language server in this process.
    """
    args = _parser().parse_args(argv)
    from server.stdio import claim_stdout

    protocol_out = claim_stdout()
    from server.logs import configured_format, setup_logging

    setup_logging(args.log_file, args.log_level, configured_format(args.log_format))
    stdin: BinaryIO = sys.stdin.buffer
    notice = None
    if not args.no_daemon:
        from server.daemon.editor import serve_editor

        outcome = serve_editor(stdin, protocol_out)
        if outcome.code is not None:
            return outcome.code
        assert outcome.stdin is not None
        stdin, notice = outcome.stdin, outcome.notice
    from server.server import create_server

    ls = create_server()
    if notice:
        ls.notices.append(notice)
    from server.metrics_http import serve_for
    from server.tracing import setup_tracing, shutdown_tracing

    user = _user_settings()
    from server.priority import lower_priority

    lower_priority(bool(user.get("low_priority", True)))  # this process indexes in the background
    endpoint = serve_for(ls, args.metrics or user.get("metrics_address"))
    setup_tracing(user.get("otel_exporter"))
    try:
        ls.start_io(stdin, protocol_out)
    finally:
        ls.close_all()
        if endpoint is not None:
            endpoint.close()
        shutdown_tracing()
        logging.getLogger(__name__).info("server stopped")
    return 0
