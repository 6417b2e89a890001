"""Logging for the daemon: stderr or a file, and the client's `window/logMessage`.

Never stdout: on stdio that is the protocol stream. pygls logs every message it sends at
INFO; forwarding those to `window/logMessage` would send a message per message, forever,
so its loggers are never forwarded and a thread-local flag stops any other recursion.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInternalError

if TYPE_CHECKING:
    from server.server import ForgeLanguageServer

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORWARDED = ("server", "indexer")

_LSP_TYPES = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
    logging.INFO: types.MessageType.Info,
    logging.DEBUG: types.MessageType.Log,
}


def setup_logging(log_file: str | None, level: str = "INFO") -> None:
    """Send log records to `log_file` (or stderr) at `level`; keep pygls' chatter down."""
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8")
        if log_file
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter(FORMAT))
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
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, JsonRpcException) and exc.code != JsonRpcInternalError.CODE)


class LspLogHandler(logging.Handler):
    """Forwards `server.*` and `indexer.*` records to the client as `window/logMessage`."""

    def __init__(self, ls: ForgeLanguageServer, level: int = logging.INFO) -> None:
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
            msg_type = _LSP_TYPES.get(
                max(lvl for lvl in _LSP_TYPES if lvl <= max(record.levelno, logging.DEBUG)),
                types.MessageType.Log,
            )
            text = f"{record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            self._ls.log_message(text, msg_type)
        except Exception:
            self.handleError(record)
        finally:
            self._local.busy = False
