"""Hybrid search: vector (Chroma) and lexical (SQLite FTS5) candidates, scored as a relevance.

1. Candidates: the nearest chunks by cosine (Chroma) and the best by BM25 (FTS5), with the
   language and path filters applied inside both retrievers, so filters are exact.
2. Evidence for every candidate, whichever side found it: its raw cosine to the query
   (recomputed from the cached vector, so a lexical-only candidate has one too), its BM25
   normalised by the query's total IDF (comparable between short and long queries), how
   much of its symbol name the query says, and its file's role (tests, examples,
   fixtures, generated code, vendored code, prose).
3. Score: a logistic model of those features (`indexer.search.ranking`), fitted offline on the
   development benchmark's tune split, so a score is an estimate of "this is what the
   query asks for" in [0, 1] and means the same for every query. Hits are ordered by it
   and `min_score` drops those below a floor.

`mode="vector"` and `mode="lexical"` keep one retriever and rank by its own evidence
(cosine, BM25), scored by the same kind of one-feature calibration. Hits whose chunk is
no longer in SQLite (a vector written just before a crash, say) are dropped: SQLite is
the truth.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

import numpy as np
import pathspec
from cachetools import LRUCache

from indexer.chunking import lexical
from indexer.core.errors import Cancelled, InvalidQuery, RemoteUnavailable
from indexer.core.globs import check_globs
from indexer.core.limits import MAX_RESULTS, SEARCH_MODES, limit_ok, min_score_ok, mode_ok
from indexer.core.protocols import Cancellable, Embedder
from indexer.core.types import SearchHit
from indexer.search import ranking
from indexer.store.index import IndexStore
from indexer.store.reads import Selection
from indexer.store.remote import RemoteVectorStore

log = logging.getLogger(__name__)

CANDIDATES = 60  # per retriever; more only helped below the tenth rank
_PATH_IN_LIMIT = 500  # above this many matching files, filter after retrieval instead of in Chroma
_BM25 = "bm25(5.0, 2.0, 1.0)"  # FTS5 column weights: symbol, path, text
_WIDEN = 8  # a filtered vector query first fetches this many times more, unfiltered
_LEXICAL_DEPTH = 300  # BM25 is read for this many lexical matches (candidates are fewer)
_EXACT_BM25_UP_TO = 20_000  # chunks; see candidates()
_DF_CACHE_TERMS = 50_000
# The caches below are shared by the query pool's threads, so each has a lock (an
# unlocked LRU can lose an entry between a lookup and its reordering and raise KeyError).
_DF_CACHE: dict[int, tuple[str | None, int, dict[str, int]]] = {}
_DF_LOCK = threading.Lock()
_PATHS_CACHE_SIZE = 32
_PATHS_CACHE: LRUCache[tuple[int, str | None, tuple[str, ...]], frozenset[str]] = LRUCache(_PATHS_CACHE_SIZE)
_PATHS_LOCK = threading.Lock()
_SCAN_MAX_CHUNKS = 30_000  # a filter's selection scanned exactly up to this size (45 MB of vectors)
_SCAN_CACHE_SIZE = 2
_SCAN_CACHE: LRUCache[tuple[int, str | None, frozenset[str]], tuple[list[str], np.ndarray, np.ndarray]] = LRUCache(
    _SCAN_CACHE_SIZE)
# Selections found too large to scan: kept apart, so that the verdict a large index gets on
# every unfiltered query does not take one of the two matrix slots.
_TOO_LARGE_SIZE = 32
_TOO_LARGE: LRUCache[tuple[int, str | None, frozenset[str]], None] = LRUCache(_TOO_LARGE_SIZE)
_SCAN_LOCK = threading.Lock()  # for _SCAN_CACHE and _TOO_LARGE
_COMMON_SHARE = 0.05  # see _selective
_COMMON_MIN = 2000
_POSTINGS_BUDGET = 5_000  # see _selective


_DEGRADED: list[str] = []  # the outage last logged (one warning per outage, not per query)


def _note_degraded(reason: str) -> None:
    head = reason.split(";")[0]
    if not _DEGRADED or _DEGRADED[-1] != head:
        log.warning("semantic search unavailable, answering from the lexical index only: %s", reason)
        _DEGRADED[:] = [head]


def _check(cancel: Cancellable | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled("The search was cancelled.")


def validate(query: object, limit: object, languages: object, paths: object) -> tuple[str, int, list[str], list[str]]:
    """Check request parameters; raise InvalidQuery with a message naming the bad one."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidQuery("'query' must be a non-empty string.")
    if not limit_ok(limit):
        raise InvalidQuery(f"'limit' must be an integer from 1 to {MAX_RESULTS}, got {limit!r}.")
    langs = languages or []
    if not isinstance(langs, list) or not all(isinstance(x, str) and x for x in langs):
        raise InvalidQuery("'languages' must be a list of language names, e.g. [\"python\", \"go\"].")
    globs = paths or []
    if not isinstance(globs, list) or not all(isinstance(x, str) and x for x in globs):
        raise InvalidQuery("'paths' must be a list of glob patterns, e.g. [\"src/**/*.py\"].")
    try:
        check_globs(globs)
    except ValueError as exc:
        raise InvalidQuery(f"'paths': {exc}.") from None
    return query.strip(), limit, [x.lower() for x in langs], globs


def _check_floor(min_score: object) -> float:
    if not min_score_ok(min_score):
        raise InvalidQuery(f"'min_score' must be a number from 0 to 1, got {min_score!r}.")
    return float(min_score)


def _check_mode(mode: object) -> None:
    if not mode_ok(mode):
        raise InvalidQuery(f"'mode' must be one of {', '.join(SEARCH_MODES)}; got {mode!r}.")


def _index_version(store: IndexStore) -> tuple[int, str | None]:
    """The part of every per-index cache key here: which store, and its `last_indexed`
    and `vectors_at` stamps, which every write of files or vectors sets (so any change to
    the index invalidates the entry)."""
    return id(store), f"{store.sql.get_meta('last_indexed')}/{store.sql.get_meta('vectors_at')}"


def matching_paths(store: IndexStore, globs: Sequence[str]) -> frozenset[str]:
    """Indexed files matching any of the gitignore-style globs.

    Cached per index version: an editor repeats the same filter query after query, and
    matching every path costs about 45 ms at 9,000 files."""
    key = (*_index_version(store), tuple(globs))
    with _PATHS_LOCK:
        hit = _PATHS_CACHE.get(key)
    if hit is not None:
        return hit
    try:
        spec = pathspec.GitIgnoreSpec.from_lines(globs)
    except Exception as exc:  # pathspec raises several types for a bad pattern
        raise InvalidQuery(f"Bad path glob in {list(globs)!r}: {exc}") from exc
    found = frozenset(p for p in store.sql.file_paths() if spec.match_file(p))
    with _PATHS_LOCK:
        _PATHS_CACHE[key] = found
    return found


def _lexical(
    store: IndexStore, words: list[str], n: int, langs: list[str], allowed: AbstractSet[str] | None,
    only: Sequence[int] = (),
) -> dict[str, float]:
    """{chunk id: -bm25} for the best `n` lexical matches (or for exactly the rowids `only`)."""
    if not words:
        return {}
    # Quoting makes every term a literal string: no FTS5 syntax can leak in from a query.
    # Column weights: a hit in the symbol name counts most, then the path, then the body.
    match = " OR ".join(f'"{t}"' for t in words)
    paths = sorted(allowed) if allowed is not None and len(allowed) <= _PATH_IN_LIMIT else None
    ranks = store.sql.lexical_ranks(match, _BM25, n, langs, paths, only)
    return {cid: -rank for cid, rank in ranks.items()}


def _document_frequencies(store: IndexStore, words: list[str]) -> tuple[int, dict[str, int]]:
    """(number of chunks, {term: chunks containing it}) from the FTS index itself.

    Cached per index version (the `last_indexed` stamp every write sets): at 100k chunks
    the count and the vocabulary lookups are a fifth of a query's time.
    """
    version = _index_version(store)
    with _DF_LOCK:  # the vocabulary dict is read, filled and cleared in place
        cache = _DF_CACHE.get(version[0])
        if cache is None or cache[0] != version[1]:
            total = store.sql.chunk_count()
            cache = (version[1], total, {})
            _DF_CACHE[version[0]] = cache
        _, total, known = cache
        todo = [w for w in words if w not in known]
        if todo:
            if len(known) + len(todo) > _DF_CACHE_TERMS:
                known.clear()
            known.update(store.sql.term_document_counts(todo))
        return total, {w: known[w] for w in words}


def _idf_mass(total: int, df: dict[str, int]) -> float:
    """Sum of the query terms' IDF, as FTS5's BM25 computes it: the most BM25 can reach per
    unit of term frequency, so BM25 / this is comparable between queries."""
    mass = sum(max(1e-6, math.log((total - n + 0.5) / (n + 0.5))) for n in df.values())
    return max(mass, 1.0)


def _selective(total: int, df: dict[str, int], budget: bool = True) -> list[str]:
    """The query terms worth a posting-list scan.

    In a large index a term found in more than `_COMMON_SHARE` of all chunks (and more than
    `_COMMON_MIN` of them) carries almost no BM25 weight but costs most of the query's time,
    so it is left out of the lexical query, as search engines' "common terms" queries do.
    With `budget` (hybrid search, where the vector side carries meaning too), a long
    query's remaining terms are then kept rarest first while their posting lists add up to
    `_POSTINGS_BUDGET`: the scan costs what the lists hold (a 30-word question over 100k
    chunks took 40-50 ms, 12-16 ms with the budget). Rare terms carry most of the BM25
    weight, but not all: simulated on the tune split with the budget scaled to its index
    size, hybrid MRR@10 fell 0.733 -> 0.712 (docs/benchmarks.md). Indexes of up to
    `_EXACT_BM25_UP_TO` chunks keep every term.
    """
    limit = max(_COMMON_MIN, int(total * _COMMON_SHARE))
    kept = [w for w, n in df.items() if n <= limit]
    if not kept and df:
        kept = [min(df, key=lambda w: df[w])]
    if budget and total > _EXACT_BM25_UP_TO and sum(df[w] for w in kept) > _POSTINGS_BUDGET:
        room, chosen = _POSTINGS_BUDGET, set[str]()
        for w in sorted(kept, key=lambda w: df[w]):
            if chosen and df[w] > room:
                break
            chosen.add(w)
            room -= df[w]
        kept = [w for w in kept if w in chosen]  # query order kept
    return kept


def _vector(
    store: IndexStore, qvec: np.ndarray, n: int, langs: list[str], allowed: AbstractSet[str] | None
) -> list[str]:
    """Nearest chunk ids, filters applied exactly.

    A filtered Chroma query scans the filtered set by brute force (about 200 ms at 100k
    chunks), so filters are first tried as a wider unfiltered query whose results are
    checked against SQLite; only when too few survive does the filtered query run.
    """
    in_paths = allowed is not None and len(allowed) <= _PATH_IN_LIMIT
    if store.shared:
        return _vector_team(store, qvec, n, langs, allowed if in_paths else None)
    if allowed is not None:
        exact = _scan_filtered(store, qvec, n, langs, allowed)
        if exact is not None:
            return exact
    else:
        # An index of up to _SCAN_MAX_CHUNKS chunks is searched exactly: no approximate
        # graph between the query and its answer, and the same stored vectors give the same
        # answers however Chroma's graph was built or rebuilt.
        exact = _scan_all(store, qvec, n, langs)
        if exact is not None:
            return exact
    if not langs and not in_paths:
        return [cid for cid, _ in store.vectors.query(qvec, n, None)]
    wide = [cid for cid, _ in store.vectors.query(qvec, n * _WIDEN, None)]
    kept = _keep(store, wide, langs, allowed if in_paths else None)
    if len(kept) >= n or len(wide) < n * _WIDEN:  # enough, or the whole index was seen
        return kept[:n]
    if langs and not in_paths:
        # The query landed where few chunks are in these languages (code clusters by
        # language): scan them exactly rather than ask Chroma to brute-force its filter.
        exact = _scan_languages(store, qvec, n, langs)
        if exact is not None:
            return exact
    clauses: list[dict[str, Any]] = []
    if langs:
        clauses.append({"language": {"$in": langs}})
    if in_paths and allowed is not None:
        clauses.append({"path": {"$in": sorted(allowed)}})
    where = clauses[0] if len(clauses) == 1 else {"$and": clauses}
    return [cid for cid, _ in store.vectors.query(qvec, n, where)]


def _scan_filtered(
    store: IndexStore, qvec: np.ndarray, n: int, langs: list[str], allowed: AbstractSet[str]
) -> list[str] | None:
    """Exact nearest chunks among the files a path filter selects, by brute-force cosine
    over their cached vectors; None when they hold more than `_SCAN_MAX_CHUNKS` chunks.

    A path filter usually names a part of the workspace (`src/**`, a package), and an
    editor repeats it query after query: the selection's matrix is cached per index
    version, so a query costs one matrix product (under 1 ms for 5,000 chunks) instead of
    a wide approximate query whose results mostly fall outside the filter.
    """
    if len(allowed) > _SCAN_MAX_CHUNKS:  # more files than the chunk limit: too large
        return None
    paths = sorted(allowed)
    parts: list[Selection] = [("path", paths[i : i + 500]) for i in range(0, len(paths), 500)]
    return _scan(store, qvec, n, langs, frozenset(allowed), lambda: _load_rows(store, parts, qvec.shape[0]))


def _scan_all(store: IndexStore, qvec: np.ndarray, n: int, langs: list[str]) -> list[str] | None:
    """Exact nearest chunks of the whole index (in `langs`, if given); None when it holds
    more than `_SCAN_MAX_CHUNKS` chunks."""
    return _scan(store, qvec, n, langs, frozenset({"\0*"}), lambda: _load_rows(store, [(None, [])], qvec.shape[0]))


def _scan_languages(store: IndexStore, qvec: np.ndarray, n: int, langs: list[str]) -> list[str] | None:
    """Exact nearest chunks in `langs`, by brute-force cosine over their cached vectors;
    None when they hold more than `_SCAN_MAX_CHUNKS` chunks (see `_scan_filtered`)."""
    what = frozenset("\0" + lang for lang in langs)  # never a path
    parts: list[Selection] = [("language", langs)]
    return _scan(store, qvec, n, langs, what, lambda: _load_rows(store, parts, qvec.shape[0]))


def _scan(
    store: IndexStore, qvec: np.ndarray, n: int, langs: list[str], what: frozenset[str],
    load: Callable[[], tuple[list[str], np.ndarray, np.ndarray] | None],
) -> list[str] | None:
    """The nearest `n` of a selection's cached matrix (`what` names it: its paths, or its
    languages; `load` reads it)."""
    key = (*_index_version(store), what)
    with _SCAN_LOCK:
        if key in _TOO_LARGE:
            return None
        entry = _SCAN_CACHE.get(key)
    if entry is None:
        loaded = load()
        with _SCAN_LOCK:
            if loaded is None:  # a selection too large stays too large until the index changes
                _TOO_LARGE[key] = None
                return None
            entry = _SCAN_CACHE[key] = loaded
    ids, languages, mat = entry
    if not ids:
        return []
    sims = mat @ _unit(qvec)
    if langs:
        sims = np.where(np.isin(languages, langs), sims, -np.inf)
    k = min(n, len(ids))
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top])]
    return [ids[i] for i in top if np.isfinite(sims[i])]


def _load_rows(
    store: IndexStore, parts: Sequence[Selection], dim: int
) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """(chunk ids, languages, unit-length vectors) of the embedded chunks that the `parts`
    (each all chunks, or those with a path or language among some values) select together, or None when they
    select more than `_SCAN_MAX_CHUNKS`. Several parts keep long path lists under SQLite's
    limit on arguments."""
    count = 0
    for part in parts:
        count += store.sql.selected_chunk_count(part)
        if count > _SCAN_MAX_CHUNKS:
            return None
    # Streamed into one preallocated matrix, normalised in place: a selection can be 45 MB,
    # and a list of its rows plus a normalised copy would triple the peak.
    ids: list[str] = []
    languages: list[str] = []
    mat = np.empty((count, dim), dtype=np.float32)
    for part in parts:
        for cid, lang, blob in store.sql.selected_chunk_vectors(part):
            if blob is not None and len(blob) == dim * 4 and len(ids) < count:
                mat[len(ids)] = np.frombuffer(blob, dtype=np.float32)
                ids.append(cid)
                languages.append(lang)
    mat = mat[: len(ids)]
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    mat /= norms
    return ids, np.array(languages), mat


def _vector_team(
    store: IndexStore, qvec: np.ndarray, n: int, langs: list[str], allowed: AbstractSet[str] | None
) -> list[str]:
    """A team index's query, always filtered to content this machine holds (possession
    filter): the server is sent the hashes of our own copies of the files (of the allowed
    paths only, when a path filter is set) and returns only entries with one of them."""
    held = {path: rec.sha256 for path, rec in store.sql.file_records(
        None if allowed is None else sorted(allowed)).items()}
    where: dict[str, Any] | None = {"language": {"$in": langs}} if langs else None
    vectors = store.vectors
    assert isinstance(vectors, RemoteVectorStore)
    return [cid for cid, _ in vectors.query(qvec, n, where, held=held)]


def _keep(store: IndexStore, ids: list[str], langs: list[str], allowed: AbstractSet[str] | None) -> list[str]:
    """`ids` (in order) whose chunk has one of `langs` and a path in `allowed`."""
    if not ids:
        return []
    ok = {cid for cid, lang, path in store.sql.chunk_languages_paths(ids)
          if (not langs or lang in langs) and (allowed is None or path in allowed)}
    return [cid for cid in ids if cid in ok]


@dataclass(slots=True)
class Candidate:
    """One chunk with the evidence the ranking model reads."""

    chunk_id: str
    rowid: int
    path: str
    start_line: int
    end_line: int
    symbol: str | None
    language: str
    kind: str | None
    body: str
    # The signatures of the definitions around a member ("impl Iterator for FilterOk > ..."),
    # the second line of its chunk text (indexer.chunking.treesitter); "" for the rest.
    within: str = ""
    cosine: float = 0.0
    bm25: float = 0.0  # BM25 / the query's IDF mass
    score: float = 0.0

    def hit(self) -> SearchHit:
        return SearchHit(path=self.path, start_line=self.start_line, end_line=self.end_line,
                         score=round(self.score, 4), symbol=self.symbol, language=self.language, kind=self.kind,
                         chunk_id=self.chunk_id, preview=self.body)


def _rows(store: IndexStore, ids: Sequence[str]) -> list[tuple[Candidate, bytes | None]]:
    """Candidates (in `ids` order, missing ones dropped) with their cached vector bytes."""
    if not ids:
        return []
    by_id = {r[0]: r for r in store.sql.candidate_rows(ids)}
    out = []
    for cid in ids:
        r = by_id.get(cid)
        if r is not None:
            within = r[9].split("\n", 1)[0] if r[5] and "." in r[5] else ""
            out.append((Candidate(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], within), r[10]))
    return out


def _unit(vec: np.ndarray) -> np.ndarray:
    return vec / (float(np.linalg.norm(vec)) or 1.0)


def _unit_rows(blobs: Sequence[bytes | None], dim: int) -> np.ndarray:
    """Stored float32 vectors as unit-length rows; a missing or malformed one is a zero row."""
    mat = np.zeros((len(blobs), dim), dtype=np.float32)
    for i, b in enumerate(blobs):
        if b is not None and len(b) == dim * 4:
            mat[i] = np.frombuffer(b, dtype=np.float32)
    norms = np.linalg.norm(mat, axis=1)
    norms[norms == 0] = 1.0
    return mat / norms[:, None]


def _cosines(qvec: np.ndarray, blobs: Sequence[bytes | None]) -> np.ndarray:
    return _unit_rows(blobs, qvec.shape[0]) @ _unit(qvec)


def candidates(
    store: IndexStore,
    embedder: Embedder,
    query: str,
    *,
    n: int = CANDIDATES,
    languages: list[str] | None = None,
    allowed: AbstractSet[str] | None = None,
    mode: str = "hybrid",
    cancel: Cancellable | None = None,
) -> list[Candidate]:
    """The candidate pool of a query with cosine and normalised BM25 filled in for all."""
    words = lexical.query_words(query)
    langs = languages or []
    lex: dict[str, float] = {}
    mass, total = 1.0, 0
    if mode in ("hybrid", "lexical") and words:
        total, df = _document_frequencies(store, words)
        kept = _selective(total, df, budget=mode == "hybrid")
        mass = _idf_mass(total, {w: df[w] for w in kept})
        words = kept
        # Ranked deeper than the candidates it contributes, so that vector candidates find
        # their BM25 here instead of in a second full-text query.
        lex = _lexical(store, words, max(n, _LEXICAL_DEPTH), langs, allowed)
    _check(cancel)
    vec_ids: list[str] = []
    qvec: np.ndarray | None = None
    if mode in ("hybrid", "vector"):
        try:
            qvec = np.asarray(embedder.embed_query(lexical.embed_text(query)), dtype=np.float32)
            vec_ids = _vector(store, qvec, n, langs, allowed)
        except RemoteUnavailable as exc:
            if mode == "vector":
                raise
            # The Chroma server or the embeddings server is down: answer from the lexical
            # side (with the query vector, cosines still come from the local vector cache),
            # and say so once per outage in the log; `status` shows the breaker.
            _note_degraded(str(exc))
    _check(cancel)
    ids = list(dict.fromkeys([*vec_ids, *list(lex)[:n]]))
    rows = _rows(store, ids)
    if mode == "hybrid" and len(lex) >= max(n, _LEXICAL_DEPTH) and total <= _EXACT_BM25_UP_TO:
        # Vector candidates below the lexical depth: their BM25, so every one has both kinds
        # of evidence. In a large index that second full-text scan costs more than it
        # changes (they rank below the top 300 lexically) and they count as no match.
        missing = [c.rowid for c, _ in rows if c.chunk_id not in lex]
        if missing:
            lex.update(_lexical(store, words, len(missing), langs, allowed, only=missing))
    cos = _cosines(qvec, [b for _, b in rows]) if qvec is not None else np.zeros(len(rows))
    out = []
    for (c, _), cs in zip(rows, cos, strict=True):
        c.cosine = float(cs)
        c.bm25 = lex.get(c.chunk_id, 0.0) / mass
        out.append(c)
    return out


def search(
    store: IndexStore,
    embedder: Embedder,
    query: str,
    *,
    limit: int = 10,
    languages: list[str] | None = None,
    paths: list[str] | None = None,
    mode: str = "hybrid",
    min_score: float = 0.0,
    cancel: Cancellable | None = None,
) -> list[SearchHit]:
    """Top `limit` chunks for `query`, best first, none scoring below `min_score`.

    mode: "hybrid" (default), "vector" or "lexical". `paths` are gitignore-style globs.
    """
    query, limit, langs, globs = validate(query, limit, languages, paths)
    floor = _check_floor(min_score)
    _check_mode(mode)
    allowed = matching_paths(store, globs) if globs else None
    if allowed is not None and not allowed:
        return []
    n = max(CANDIDATES, limit * 3)
    if allowed is not None and len(allowed) > _PATH_IN_LIMIT:
        n *= 4  # filtered after retrieval: fetch more so enough survive
    pool = candidates(store, embedder, query, n=n, languages=langs, allowed=allowed, mode=mode, cancel=cancel)
    if allowed is not None:
        pool = [c for c in pool if c.path in allowed]
    ranking.score(pool, query, mode)
    # Equal scores are common (copies of a file embed alike now that the path is not in
    # the embedded text), so ties go by place: the same index answers in the same order
    # however its stores were built or repaired.
    pool.sort(key=lambda c: (-round(c.score, 9), c.path, c.start_line))
    hits = (c.hit() for c in merge_pieces(pool))
    return [h for h in hits if h.score >= floor][:limit]  # the floor applies to the score a user sees


def merge_pieces(ranked: Sequence[Candidate]) -> list[Candidate]:
    """Pieces of one definition found together become one result, at the best piece's
    place and score: touching or overlapping chunks of the same file and symbol (the
    pieces of a long Markdown section, of the glue between two definitions, of a long
    text file's windows), whose range and preview become their union. Different symbols
    never merge, so a method and its class's head, or a nested helper and its enclosing
    function, stay results of their own."""
    kept: list[Candidate] = []
    by_unit: dict[tuple[str, str | None], list[Candidate]] = {}
    for c in ranked:
        same = by_unit.setdefault((c.path, c.symbol), [])
        into = next((k for k in same if c.start_line <= k.end_line + 1 and c.end_line >= k.start_line - 1), None)
        if into is None:
            kept.append(c)
            same.append(c)
            continue
        lines = c.body.split("\n")
        if c.end_line > into.end_line:
            into.body += "\n" + "\n".join(lines[max(0, into.end_line + 1 - c.start_line):])
            into.end_line = c.end_line
        if c.start_line < into.start_line:
            into.body = "\n".join(lines[: into.start_line - c.start_line]) + "\n" + into.body
            into.start_line = c.start_line
    return kept
