"""The vector side on a Chroma server (`chromaUrl`), alone or shared by a team (`teamIndex`).

SQLite stays local and remains the source of truth; only the vectors live on the server,
in a collection named per workspace (a hash of this machine's name and the folder's path,
so no path leaks) and per index config hash, or, in team mode, per team index name and
config hash. Every call goes through one `RemoteTarget("chroma", ...)`: timeouts, retries
with backoff for transient failures, a circuit breaker shown in `status`.

Team mode differs from a private collection in three ways (see docs/operations.md):
- chunk ids include the file's content hash and each entry carries `file_hash`, so two
  versions of a file are two sets of entries, and no chunk text is stored on the server;
- a machine never deletes from the shared collection (other machines may hold the same
  content) and never treats the collection's other entries as orphans;
- queries are filtered to the hashes of this machine's own copies of the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np

from indexer.core.errors import ForgeError, RemoteMismatch, RemoteUnavailable
from indexer.core.protocols import Vectors
from indexer.core.resilience import RemoteTarget

log = logging.getLogger(__name__)

T = TypeVar("T")
_BATCH = 2000  # ids per request: below the server's max batch size
_NAME_OK = re.compile(r"[^a-zA-Z0-9._-]+")


@dataclass(frozen=True)
class RemoteSpec:
    """Where and how to reach the Chroma server, and which collection to use."""

    url: str
    collection: str
    team: bool = False
    headers: dict[str, str] | None = None
    timeout_s: float = 30.0
    retries: int = 4


def workspace_key(root: str) -> str:
    """An opaque id of this folder on this machine: two machines never share a private
    collection, and the server never learns the folder's path."""
    return hashlib.sha256(f"{socket.gethostname()}\0{root}".encode()).hexdigest()[:16]


def collection_name(config: str, *, workspace: str | None = None, team: str | None = None) -> str:
    """`forge-<workspace id>-<config>` or `forge-team-<name>-<config>` (a valid Chroma name)."""
    if team is not None:
        safe = _NAME_OK.sub("-", team).strip("-._")[:64] or "team"
        safe = re.sub(r"\.{2,}", ".", safe)
        return f"forge-team-{safe}-{config}"
    return f"forge-{workspace}-{config}"


def is_transient(exc: BaseException) -> bool:
    """Connection refused/reset, timeouts, and 5xx/429 answers: trying again may help."""
    import httpx

    if isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError):
        return True
    code = getattr(exc, "code", None)
    if callable(code):
        with contextlib.suppress(Exception):
            status = int(code())
            # chromadb maps a server error body to a ChromaError; InternalError is 500.
            return status >= 500 or status == 429
    # Raised by chromadb's client constructor when it cannot reach the server.
    return isinstance(exc, ValueError) and "could not connect to a chroma server" in str(exc).lower()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:200]


class RemoteVectorStore:
    """The same interface as `indexer.store.index.VectorStore`, on a Chroma server."""

    def __init__(self, spec: RemoteSpec, dim: int) -> None:
        self.spec = spec
        self.path = spec.url  # named in messages like a local store's folder
        self.dim = dim
        self.shared = spec.team
        self.known_count = 0
        self.remote_target = RemoteTarget("chroma", spec.url, transient=is_transient, retries=spec.retries)
        self._client: Any = None
        self._collection: Any = None

    # -- plumbing --------------------------------------------------------------------
    def _call(self, fn: Callable[[], T], *, reopened: bool = False) -> T:
        """One server call through the breaker; a refusal becomes a one-line ForgeError.

        A collection deleted on the server meanwhile (a team index garbage-collected by CI,
        say) is re-created once and the call repeated: `repair` then restores our entries.
        """
        try:
            return self.remote_target.call(fn)
        except ForgeError:
            raise
        except Exception as exc:
            status = getattr(exc, "code", None)
            code = status() if callable(status) else None
            if code == 404 and self._collection is not None and not reopened:
                log.warning("collection %s is gone from %s: re-creating it", self.spec.collection, self.spec.url)
                self._collection = self._call(self._open_collection, reopened=True)
                return self._call(fn, reopened=True)
            if code in (401, 403):
                raise RemoteUnavailable(
                    f"the Chroma server at {self.spec.url} refused our credentials ({_first_line(exc)}): "
                    "store the right one with `forge-indexer remote-secret set chroma` (and check chromaAuthHeader)."
                ) from exc
            raise RemoteMismatch(
                f"the Chroma server at {self.spec.url} rejected a request ({_first_line(exc)}). "
                "Check that it is a Chroma 1.x server, or unset chromaUrl to use the local store."
            ) from exc

    def _connect(self) -> None:
        import chromadb
        import httpx
        from chromadb.config import Settings as ChromaSettings

        parts = urlsplit(self.spec.url if "://" in self.spec.url else f"http://{self.spec.url}")
        ssl = parts.scheme == "https"
        host = parts.hostname or "localhost"
        port = parts.port or (443 if ssl else 8000)
        client: Any = chromadb.HttpClient(
            host=host, port=port, ssl=ssl, headers=dict(self.spec.headers or {}),
            settings=ChromaSettings(anonymized_telemetry=False),
        )
        # chromadb's httpx session has no timeout at all: a hung server would hang us.
        server = getattr(client, "_server", None)
        session = getattr(server, "_session", None)
        if session is not None:
            session.timeout = httpx.Timeout(self.spec.timeout_s)
        self._client = client

    def open(self) -> RemoteVectorStore:
        """Connect, check the server answers (heartbeat), open the collection, count it."""
        self._call(self._connect)
        self._call(lambda: self._client.heartbeat())
        self._collection = self._call(self._open_collection)
        meta = getattr(self._collection, "metadata", None) or {}
        if meta.get("dim") not in (None, self.dim):
            raise RemoteMismatch(
                f"the collection {self.spec.collection} on {self.spec.url} holds {meta.get('dim')}-dimensional "
                f"vectors, this model makes {self.dim}: use another teamIndex name or rebuild it."
            )
        self.known_count = self.count()
        return self

    def _open_collection(self) -> Any:
        # embedding_function=None: we pass vectors ourselves; Chroma must never fetch a model.
        return self._client.get_or_create_collection(
            self.spec.collection,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"dim": self.dim},
        )

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    # -- the VectorStore interface ------------------------------------------------------
    def reset(self) -> None:
        """Empty a private collection. A shared one is never emptied: others' entries live there
        (and its name carries the config hash, so a new config already has its own)."""
        if self.shared:
            return
        name = self.spec.collection
        with contextlib.suppress(Exception):
            self._call(lambda: self._client.delete_collection(name))
        self._collection = None
        self.open()

    def count(self) -> int:
        return int(self._call(lambda: self._collection.count()))

    def all_ids(self) -> set[str]:
        ids: set[str] = set()
        offset = 0
        while True:
            got = self._call(lambda o=offset: self._collection.get(include=[], limit=10_000, offset=o))  # type: ignore[misc]
            batch = got["ids"]
            ids.update(batch)
            if len(batch) < 10_000:
                return ids
            offset += len(batch)

    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of `ids` the server already holds (for the team index: what others stored)."""
        found: set[str] = set()
        for i in range(0, len(ids), _BATCH):
            part = list(ids[i : i + _BATCH])
            got = self._call(lambda p=part: self._collection.get(ids=p, include=[]))  # type: ignore[misc]
            found.update(got["ids"])
        return found

    def vectors_by_text(self, text_hashes: Sequence[str]) -> dict[str, Vectors]:
        """{text hash: vector} of entries any machine stored for those chunk texts (team index)."""
        out: dict[str, Vectors] = {}
        for i in range(0, len(text_hashes), _BATCH // 4):
            part = list(text_hashes[i : i + _BATCH // 4])
            where = {"text_hash": {"$in": part}}
            got = self._call(lambda w=where: self._collection.get(  # type: ignore[misc]
                where=w, include=["embeddings", "metadatas"]))
            embs = got.get("embeddings")
            if embs is None:
                continue
            for meta, emb in zip(got.get("metadatas") or [], embs, strict=False):
                h = (meta or {}).get("text_hash")
                if isinstance(h, str):
                    out.setdefault(h, np.asarray(emb, dtype=np.float32))
        return out

    def upsert(self, ids: Sequence[str], vectors: Sequence[Vectors], metadatas: Sequence[dict[str, Any]]) -> None:
        # No documents: chunk text stays on this machine (hits are shown from the local copy).
        for i in range(0, len(ids), _BATCH):
            part_ids = list(ids[i : i + _BATCH])
            embs = np.vstack(vectors[i : i + _BATCH])
            metas = list(metadatas[i : i + _BATCH])
            self._call(lambda a=part_ids, e=embs, m=metas: self._collection.upsert(  # type: ignore[misc]
                ids=a, embeddings=e, metadatas=m))
        self.known_count = self.count()

    def delete(self, ids: Sequence[str]) -> None:
        """Delete from a private collection; in team mode a no-op (see the module docstring)."""
        if self.shared:
            return
        for i in range(0, len(ids), _BATCH):
            part = list(ids[i : i + _BATCH])
            self._call(lambda p=part: self._collection.delete(ids=p))  # type: ignore[misc]
        self.known_count = self.count()

    def embeddings(self, ids: Sequence[str]) -> dict[str, Vectors]:
        out: dict[str, Vectors] = {}
        for i in range(0, len(ids), _BATCH):
            part = list(ids[i : i + _BATCH])
            got = self._call(lambda p=part: self._collection.get(ids=p, include=["embeddings"]))  # type: ignore[misc]
            embs = got.get("embeddings")
            if embs is not None:
                out.update((cid, np.asarray(e, dtype=np.float32)) for cid, e in zip(got["ids"], embs, strict=False))
        return out

    def query(
        self, vector: Vectors, n: int, where: dict[str, Any] | None = None,
        held: dict[str, str] | None = None,
    ) -> list[tuple[str, float]]:
        """Nearest chunk ids with cosine similarity, best first.

        `held` (path -> sha256 of this machine's copy) is the possession filter of a team
        index: only entries whose `file_hash` is one of those are asked for, and a hit whose
        stored hash is not the local file's own is dropped.
        """
        if held is not None:
            if not held:
                return []
            possession = {"file_hash": {"$in": sorted(set(held.values()))}}
            where = possession if where is None else {"$and": [where, possession]}
        elif self.known_count == 0:
            return []
        res = self._call(lambda: self._collection.query(
            query_embeddings=[vector.tolist()], n_results=max(1, min(n, self.known_count or n)), where=where,
            include=["distances", "metadatas"] if held is not None else ["distances"],
        ))
        ids = res["ids"][0]
        dists = (res.get("distances") or [[]])[0]
        metas = (res.get("metadatas") or [[None] * len(ids)])[0]
        out = []
        for cid, dist, meta in zip(ids, dists, metas, strict=False):
            if held is not None and (not meta or held.get(str(meta.get("path"))) != meta.get("file_hash")):
                continue  # another branch's (or machine's) version of the file
            out.append((cid, 1.0 - float(dist)))
        return out


def open_remote(spec: RemoteSpec, dim: int) -> RemoteVectorStore:
    """The open-time probe of a remote store: heartbeat, collection, count.

    A server that does not answer gives `RemoteUnavailable` naming the URL and the fix; it
    is never taken for damage (nothing is quarantined: the server owns its files).
    """
    store = RemoteVectorStore(spec, dim)
    try:
        return store.open()
    except RemoteUnavailable as exc:
        store.close()
        raise RemoteUnavailable(
            f"the Chroma server at {spec.url} is unavailable ({exc.__cause__ or exc}); start it or unset chromaUrl."
        ) from exc
    except BaseException:
        store.close()
        raise
