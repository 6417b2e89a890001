"""Context retrieval: relevant code for an LLM prompt, packed into a token budget.

Given a query (or a file position, whose enclosing chunk becomes the query), take the
hybrid search hits, merge hits that overlap or touch in the same file into one snippet,
drop exact duplicates, then pack greedily by score. Snippets are counted with the
embedding model's tokenizer: the prompt model's is unknown here, and for code the two
agree to within a few percent for BERT-style vocabularies (documented in docs/).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from indexer.core.errors import InvalidQuery
from indexer.core.types import ContextResult, SearchHit, Snippet
from indexer.store.index import IndexStore

_CANDIDATES = 40
_MIN_HEAD = 48  # tokens: a trimmed snippet smaller than this is not worth its header


@dataclass(slots=True)
class _Span:
    path: str
    start: int
    end: int
    score: float
    lines: dict[int, str]

    def text(self) -> str:
        return "\n".join(self.lines.get(n, "") for n in range(self.start, self.end + 1))


def anchor_chunk(store: IndexStore, path: str, line: int) -> SearchHit | None:
    """The smallest chunk of `path` containing `line` (1-based)."""
    row = store.sql.smallest_chunk_at(path, line)
    if row is None:
        return None
    return SearchHit(path=row[1], start_line=row[2], end_line=row[3], score=1.0, symbol=row[4],
                     language=row[5], kind=row[6], chunk_id=row[0], preview=row[7])


def merge(hits: Sequence[SearchHit]) -> list[_Span]:
    """Merge hits of the same file that overlap or touch; keep the best score."""
    by_path: dict[str, list[SearchHit]] = {}
    for h in hits:
        by_path.setdefault(h.path, []).append(h)
    spans: list[_Span] = []
    for path, group in by_path.items():
        group.sort(key=lambda h: h.start_line)
        cur: _Span | None = None
        for h in group:
            body_lines = dict(enumerate(h.preview.split("\n"), start=h.start_line))
            if cur is not None and h.start_line <= cur.end + 1:
                cur.end = max(cur.end, h.end_line)
                cur.score = max(cur.score, h.score)
                for n, text in body_lines.items():
                    cur.lines.setdefault(n, text)
            else:
                cur = _Span(path, h.start_line, h.end_line, h.score, body_lines)
                spans.append(cur)
    return spans


def _head(span: _Span, room: int, count_tokens: Callable[[str], int]) -> tuple[str, int, int] | None:
    """(text, end line, tokens) of the longest head of `span` that fits `room` tokens."""
    lines = span.text().split("\n")
    while lines:
        text = "\n".join(lines)
        end = span.start + len(lines) - 1
        tokens = count_tokens(f"{span.path}:{span.start}-{end}\n{text}")
        if tokens <= room:
            return text, end, tokens
        if len(lines) == 1:
            return None
        lines = lines[: max(1, len(lines) * 3 // 4)]
    return None


def pack(spans: Sequence[_Span], budget: int, count_tokens: Callable[[str], int]) -> ContextResult:
    """Greedy by score: take each snippet that still fits.

    A snippet that does not fit keeps its head when that still leaves a useful piece
    (`_MIN_HEAD` tokens or more; always for the best one): hits are whole functions now,
    and a function's signature and first lines say most of what it does.
    """
    chosen: list[Snippet] = []
    used = 0
    seen: set[str] = set()
    for span in sorted(spans, key=lambda s: -s.score):
        text = span.text()
        digest = hashlib.sha1(text.strip().encode()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        tokens = count_tokens(f"{span.path}:{span.start}-{span.end}\n{text}")
        end = span.end
        if used + tokens > budget:
            room = budget - used
            head = _head(span, room, count_tokens) if (not chosen or room >= _MIN_HEAD) else None
            if head is None:
                continue
            text, end, tokens = head
        chosen.append(Snippet(span.path, span.start, end, text, round(span.score, 4), tokens))
        used += tokens
    return ContextResult(tuple(chosen), used, budget)


def build_context(
    store: IndexStore,
    search: Callable[[str, int], list[SearchHit]],
    count_tokens: Callable[[str], int],
    *,
    query: str | None,
    path: str | None,
    line: int | None,
    budget: int,
) -> ContextResult:
    """Snippets for a query and/or a position, packed to `budget` tokens."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 16:
        raise InvalidQuery(f"'budget' must be an integer of at least 16 tokens, got {budget!r}.")
    if not (isinstance(query, str) and query.strip()) and path is None:
        raise InvalidQuery("Give a 'query', or a file and position to retrieve context for.")
    hits: list[SearchHit] = []
    text_query = query.strip() if isinstance(query, str) and query.strip() else None
    file_indexed: bool | None = None
    if path is not None:
        if not isinstance(line, int) or isinstance(line, bool) or line < 1:
            raise InvalidQuery(f"'line' must be a 1-based line number, got {line!r}.")
        file_indexed = store.sql.has_file(path)
        anchor = anchor_chunk(store, path, line)
        if anchor is not None:
            hits.append(anchor)
            # The code around the cursor is the best description of what is relevant to it.
            text_query = f"{text_query}\n{anchor.preview}" if text_query else anchor.preview
    if text_query:
        found = search(text_query, _CANDIDATES)
        if hits:
            found = [h for h in found if h.chunk_id != hits[0].chunk_id]
        hits.extend(found)
    packed = pack(merge(hits), budget, count_tokens)
    return ContextResult(packed.snippets, packed.tokens_used, packed.budget, file_indexed)
