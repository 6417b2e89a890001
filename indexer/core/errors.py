"""Domain exceptions: each carries a message a user can act on.

Everything the indexer raises on purpose derives from `ForgeError`, so the CLI and the
LSP server can turn it into a one-line error / JSON-RPC error without a traceback.
"""

from __future__ import annotations


class ForgeError(Exception):
    """Base class for errors whose message is meant for the user."""


class ModelNotFound(ForgeError):
    """The embedding model (GGUF file or the bundled weights package) is missing."""


class ModelInvalid(ForgeError):
    """A model file exists but cannot be used (corrupt, wrong architecture, not embeddings)."""


class StoreCorrupt(ForgeError):
    """The on-disk index (SQLite or Chroma) cannot be read; rebuilding it fixes this."""


class IndexLocked(ForgeError):
    """Another process owns this workspace's index (single-writer lock)."""


class StoreBusy(ForgeError):
    """A transient store failure (a SQLite lock held too long, an I/O hiccup): retrying helps."""


class IndexNotReady(ForgeError):
    """A query arrived before anything was indexed for the workspace."""


class NotIndexed(IndexNotReady):
    """A read-only command on a folder that has no index at all (nothing was created)."""


class InvalidQuery(ForgeError):
    """Query parameters are malformed (empty query, bad glob, unknown language...)."""


class Cancelled(ForgeError):
    """Work was cancelled by the caller (client `$/cancelRequest`, Ctrl-C, shutdown)."""


class DiskFull(ForgeError):
    """The disk holding the index is full: nothing is corrupt; free space and run again."""


class StateDirUnavailable(ForgeError):
    """The state directory is read-only, gone or otherwise unusable (not a damaged index).

    `finding` and `fix` are the message's two halves (what is wrong, what to do), for
    reports that show them apart (`doctor`)."""

    def __init__(self, finding: str, fix: str | None = None) -> None:
        super().__init__(f"{finding}: {fix}" if fix else finding)
        self.finding = finding
        self.fix = fix


class StoreRepairing(StoreBusy):
    """The index was found damaged and is being rebuilt in the background: retry shortly."""


class VectorStoreFailed(StoreCorrupt):
    """Chroma raised while in use: its folder is treated as damaged and rebuilt from the cache."""


class StateDirVanished(StateDirUnavailable):
    """The state directory was deleted while the index was open; reopening re-creates it."""


class RemoteUnavailable(ForgeError):
    """A remote engine (Chroma server, embeddings server) cannot be reached or keeps failing."""


class RemoteMismatch(ForgeError):
    """A remote engine answers, but not the way the index needs (other model, wrong dimension)."""
