"""Logging for the daemon: stderr or a file, and the client's `window/logMessage`.

Never stdout: on stdio that is the protocol stream. pygls logs every message it sends at
INFO; forwarding those to `window/logMessage` would send a message per message, forever,
so its loggers are never forwarded and a thread-local flag stops any other recursion.

`--log-format json` (or the `logFormat` setting) writes one JSON object per line: `ts`,
`level`, `logger`, `message`, and `request_id` / `workspace` when the line was caused by a
request or an index job (the context variables below, which the request handlers set and
the query pool carries into its threads), `exc_info` as a string.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.runtime import Notifier

# lsprotocol and pygls are imported where they are used, not here: the CLI imports this
# module for `--log-format`, and `lsprotocol.types` alone costs most of a second of import.

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORWARDED = ("server", "indexer")
LOG_FORMATS = ("text", "json")

#: The request a log line is caused by: a connection-unique prefix and the JSON-RPC id.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("forge_request_id", default=None)
#: The workspace root (folder name) a line is about, where one is known.
WORKSPACE: contextvars.ContextVar[str | None] = contextvars.ContextVar("forge_workspace", default=None)

#: Log levels → `window/logMessage` types (lsprotocol's `MessageType` values: Error 1,
#: Warning 2, Info 3, Log 4).
_LSP_TYPES = {logging.ERROR: 1, logging.WARNING: 2, logging.INFO: 3, logging.DEBUG: 4}


class ContextFilter(logging.Filter):
    """Adds `request_id` and `workspace` to a record when the context knows them."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id, workspace = REQUEST_ID.get(), WORKSPACE.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        if workspace is not None and not hasattr(record, "workspace"):
            record.workspace = workspace
        return True


class TextFormatter(logging.Formatter):
    """The plain format, the message led by `[request id]` when a request caused the line."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # logging's own name
        request_id = getattr(record, "request_id", None)
        if request_id:  # `format` sets record.message afresh for every handler
            record.message = f"[{request_id}] {record.message}"
        return super().formatMessage(record)


def make_formatter(log_format: str = "text", fmt: str = FORMAT) -> logging.Formatter:
    """A formatter for `log_format` ("text" or "json"); `fmt` is the text layout."""
    if log_format == "json":
        # python-json-logger: extra record attributes (request_id, workspace) become keys.
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            timestamp="ts",
            rename_fields={"levelname": "level", "name": "logger"},
        )
    if log_format != "text":
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    return TextFormatter(fmt)


def context_handler(handler: logging.Handler, log_format: str = "text", fmt: str = FORMAT) -> logging.Handler:
    """`handler` with the request/workspace context filter and the chosen format."""
    handler.setFormatter(make_formatter(log_format, fmt))
    if not any(isinstance(f, ContextFilter) for f in handler.filters):
        handler.addFilter(ContextFilter())
    return handler


def setup_logging(log_file: str | None, level: str = "INFO", log_format: str = "text") -> None:
    """Send log records to `log_file` (or stderr) at `level`; keep pygls' chatter down."""
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8")
        if log_file
        else logging.StreamHandler(sys.stderr)
    )
    context_handler(handler, log_format)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if level != "DEBUG":
        logging.getLogger("pygls").setLevel(logging.WARNING)
    rpc_logger = logging.getLogger("pygls.protocol.json_rpc")
    if not any(isinstance(f, _ExpectedRpcErrors) for f in rpc_logger.filters):
        rpc_logger.addFilter(_ExpectedRpcErrors())
    for noisy in ("chromadb", "httpx", "urllib3", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _ExpectedRpcErrors(logging.Filter):
    """Drop pygls' tracebacks for errors we answer on purpose (bad params, index not ready...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pygls.exceptions import JsonRpcException, JsonRpcInternalError

        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, JsonRpcException) and exc.code != JsonRpcInternalError.CODE)


class LspLogHandler(logging.Handler):
    """Forwards `server.*` and `indexer.*` records to the client as `window/logMessage`."""

    def __init__(self, ls: Notifier, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._ls = ls
        self._local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".", 1)[0] in FORWARDED and super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            from lsprotocol import types

            msg_type = types.MessageType(_LSP_TYPES.get(
                max(lvl for lvl in _LSP_TYPES if lvl <= max(record.levelno, logging.DEBUG)),
                types.MessageType.Log,
            ))
            text = f"{record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            self._ls.log_message(text, msg_type)
        except Exception:
            self.handleError(record)
        finally:
            self._local.busy = False


def configured_format(explicit: str | None = None) -> str:
    """`explicit`, else the `logFormat` setting (environment, then the user config file)."""
    if explicit:
        return explicit
    try:
        from indexer.core.settings import load_settings

        return load_settings(None)[0].log_format
    except Exception:  # a broken config file is reported where settings are loaded for real
        return "text"


def use_format(log_format: str) -> None:
    """Switch the handlers already on the root logger to `log_format` (the CLI's global option)."""
    if log_format == "text":
        return
    for handler in logging.getLogger().handlers:
        context_handler(handler, log_format)
