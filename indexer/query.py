"""Hybrid search: vector (Chroma) and lexical (SQLite FTS5/BM25) results fused by RRF.

Reciprocal-rank fusion needs no score calibration between the two retrievers, which is
why it is the usual choice; weights let the vector side lead. Hits whose chunk is no longer
in SQLite (a vector written just before a crash, say) are dropped: SQLite is the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pathspec

from indexer import lexical
from indexer.errors import Cancelled, InvalidQuery
from indexer.protocols import Cancellable, Embedder
from indexer.store import IndexStore
from indexer.types import SearchHit

RRF_K = 60
MAX_LIMIT = 200
_PATH_IN_LIMIT = 500  # above this many matching files, filter after retrieval instead of in Chroma


@dataclass(frozen=True, slots=True)
class Weights:
    vector: float = 1.0
    lexical: float = 1.0


def _check(cancel: Cancellable | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled("The search was cancelled.")


def validate(query: object, limit: object, languages: object, paths: object) -> tuple[str, int, list[str], list[str]]:
    """Check request parameters; raise InvalidQuery with a message naming the bad one."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidQuery("'query' must be a non-empty string.")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery(f"'limit' must be an integer from 1 to {MAX_LIMIT}, got {limit!r}.")
    langs = languages or []
    if not isinstance(langs, list) or not all(isinstance(x, str) and x for x in langs):
        raise InvalidQuery("'languages' must be a list of language names, e.g. [\"python\", \"go\"].")
    globs = paths or []
    if not isinstance(globs, list) or not all(isinstance(x, str) and x for x in globs):
        raise InvalidQuery("'paths' must be a list of glob patterns, e.g. [\"src/**/*.py\"].")
    return query.strip(), limit, [x.lower() for x in langs], globs


def matching_paths(store: IndexStore, globs: Sequence[str]) -> set[str]:
    """Indexed files matching any of the gitignore-style globs."""
    try:
        spec = pathspec.GitIgnoreSpec.from_lines(globs)
    except Exception as exc:  # pathspec raises several types for a bad pattern
        raise InvalidQuery(f"Bad path glob in {list(globs)!r}: {exc}") from exc
    rows = store.sql.conn.execute("SELECT path FROM files")
    return {p for (p,) in rows if spec.match_file(p)}


def _lexical(store: IndexStore, query: str, n: int, langs: list[str], allowed: set[str] | None) -> list[str]:
    expr = lexical.match_expression(query)
    if expr is None:
        return []
    sql = (
        "SELECT c.id FROM chunks_fts f JOIN chunks c ON c.rowid = f.rowid "
        "WHERE chunks_fts MATCH ?"
    )
    args: list[Any] = [expr]
    if langs:
        sql += f" AND c.language IN ({','.join('?' * len(langs))})"
        args += langs
    if allowed is not None and len(allowed) <= _PATH_IN_LIMIT:
        sql += f" AND c.path IN ({','.join('?' * len(allowed))})"
        args += sorted(allowed)
    # Column weights: a hit in the symbol name counts most, then the path, then the body.
    sql += " ORDER BY bm25(chunks_fts, 5.0, 2.0, 1.0) LIMIT ?"
    args.append(n)
    return [r[0] for r in store.sql.conn.execute(sql, args)]


def _vector(
    store: IndexStore, embedder: Embedder, query: str, n: int, langs: list[str], allowed: set[str] | None
) -> list[str]:
    clauses: list[dict[str, Any]] = []
    if langs:
        clauses.append({"language": {"$in": langs}})
    if allowed is not None and len(allowed) <= _PATH_IN_LIMIT:
        clauses.append({"path": {"$in": sorted(allowed)}})
    where: dict[str, Any] | None = None
    if len(clauses) == 1:
        where = clauses[0]
    elif clauses:
        where = {"$and": clauses}
    vec = embedder.embed_query(query)
    return [cid for cid, _ in store.vectors.query(vec, n, where)]


def fuse(rankings: Sequence[tuple[float, Sequence[str]]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion, scores scaled so a top-1 hit in every list scores 1.0."""
    scores: dict[str, float] = {}
    for weight, ids in rankings:
        for rank, cid in enumerate(ids):
            scores[cid] = scores.get(cid, 0.0) + weight / (k + rank + 1)
    top = sum(w for w, _ in rankings) / (k + 1) or 1.0
    return sorted(((cid, s / top) for cid, s in scores.items()), key=lambda x: -x[1])


def hits_for(store: IndexStore, scored: Sequence[tuple[str, float]]) -> list[SearchHit]:
    """Rows for chunk ids, in the given order; ids missing from SQLite are dropped."""
    if not scored:
        return []
    ids = [cid for cid, _ in scored]
    rows = store.sql.conn.execute(
        "SELECT id, path, start_line, end_line, symbol, language, kind, body FROM chunks "
        f"WHERE id IN ({','.join('?' * len(ids))})",
        ids,
    ).fetchall()
    by_id = {r[0]: r for r in rows}
    out = []
    for cid, score in scored:
        r = by_id.get(cid)
        if r is None:
            continue
        out.append(SearchHit(path=r[1], start_line=r[2], end_line=r[3], score=round(score, 4),
                             symbol=r[4], language=r[5], kind=r[6], chunk_id=cid, preview=r[7]))
    return out


def search(
    store: IndexStore,
    embedder: Embedder,
    query: str,
    *,
    limit: int = 10,
    languages: list[str] | None = None,
    paths: list[str] | None = None,
    weights: Weights = Weights(),
    mode: str = "hybrid",
    cancel: Cancellable | None = None,
) -> list[SearchHit]:
    """Top `limit` chunks for `query`. mode: "hybrid" (default), "vector" or "lexical"."""
    query, limit, langs, globs = validate(query, limit, languages, paths)
    allowed = matching_paths(store, globs) if globs else None
    if allowed is not None and not allowed:
        return []
    n = max(50, limit * 5)
    if allowed is not None and len(allowed) > _PATH_IN_LIMIT:
        n *= 4  # filtered after retrieval: fetch more so enough survive
    rankings: list[tuple[float, Sequence[str]]] = []
    if mode in ("hybrid", "lexical"):
        rankings.append((weights.lexical, _lexical(store, query, n, langs, allowed)))
    _check(cancel)
    if mode in ("hybrid", "vector"):
        rankings.append((weights.vector, _vector(store, embedder, query, n, langs, allowed)))
    _check(cancel)
    hits = hits_for(store, fuse(rankings))
    if allowed is not None:
        hits = [h for h in hits if h.path in allowed]
    return hits[:limit]
