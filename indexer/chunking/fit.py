"""Fitting code into the model's token budget: line windows and hard truncation.

Every chunk text must fit `max_tokens` as counted by the model's own tokenizer. Counting is
a C call but not free, so a range is counted once as a whole when its length could exceed
the budget (a token is never shorter than one character, so a short text needs no count),
and only over-budget ranges are counted line by line to place split points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from indexer.core.types import Chunk, SymbolKind

CountTokens = Callable[[str], int]


def truncate_line(line: str, count_tokens: CountTokens, budget: int) -> str:
    """The longest prefix of a single line that fits `budget` tokens (binary search)."""
    lo, hi = 0, len(line)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(line[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return line[:lo]


def make_chunk(
    header: str, lines: Sequence[str], start: int, end: int, symbol: str | None, kind: SymbolKind | None,
    count_tokens: CountTokens, budget: int,
) -> Chunk:
    """A chunk of lines[start-1:end] with `header`; the body is cut to fit if it must be."""
    body = "\n".join(lines[start - 1 : end])
    text = f"{header}\n{body}" if header else body
    n = count_tokens(text)
    if n > budget:  # only a single over-long line gets here: keep its head
        head_tokens = count_tokens(header) if header else 0
        body = truncate_line(body, count_tokens, max(1, budget - head_tokens))
        text = f"{header}\n{body}" if header else body
        n = count_tokens(text)
    return Chunk(text=text, body=body, start_line=start, end_line=end, symbol=symbol, kind=kind, tokens=n)


def split_range(
    header: str, lines: Sequence[str], start: int, end: int, boundaries: set[int], symbol: str | None,
    kind: SymbolKind | None, count_tokens: CountTokens, budget: int,
) -> list[Chunk]:
    """Split lines start..end into chunks that fit, cutting at `boundaries` when possible.

    `boundaries` are line numbers where a statement starts: a cut there never splits one.
    """
    head_tokens = count_tokens(header) if header else 0
    room = max(8, budget - head_tokens - 2)
    costs = {n: max(0, count_tokens(lines[n - 1]) - 2) for n in range(start, end + 1)}
    out: list[Chunk] = []
    s = start
    while s <= end:
        total, e, last_boundary = 0, s - 1, None
        while e < end and total + costs[e + 1] <= room:
            e += 1
            total += costs[e]
            if e + 1 in boundaries and e + 1 <= end:
                last_boundary = e
        if e < s:  # one line alone is over budget: it becomes its own (truncated) chunk
            e = s
        elif e < end and last_boundary is not None and last_boundary >= s + (e - s) // 3:
            e = last_boundary  # prefer a statement boundary unless it wastes most of the room
        chunk = make_chunk(header, lines, s, e, symbol, kind, count_tokens, budget)
        while chunk.tokens > budget and e > s:  # per-line sums can undercount slightly
            e -= 1
            chunk = make_chunk(header, lines, s, e, symbol, kind, count_tokens, budget)
        out.append(chunk)
        s = e + 1
    return out


def line_windows(
    header: str, lines: Sequence[str], start: int, end: int, count_tokens: CountTokens, budget: int,
    symbol: str | None = None, kind: SymbolKind | None = None,
) -> list[Chunk]:
    """Plain windows over lines start..end (blank lines are preferred cut points)."""
    blanks = {n + 1 for n in range(start, end + 1) if not lines[n - 1].strip()}
    return [c for c in split_range(header, lines, start, end, blanks, symbol, kind, count_tokens, budget)
            if c.body.strip()]
