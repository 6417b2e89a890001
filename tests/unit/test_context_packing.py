"""Merging and packing of context snippets (pure functions; token counter is a fake)."""

from indexer.core.types import SearchHit
from indexer.search.context import merge, pack


def hit(path: str, start: int, end: int, score: float, cid: str) -> SearchHit:
    body = "\n".join(f"line {n}" for n in range(start, end + 1))
    return SearchHit(path, start, end, score, None, "python", None, cid, body)


def words(text: str) -> int:
    return len(text.split())


def test_overlapping_and_touching_hits_merge_keeping_best_score() -> None:
    spans = merge(
        [
            hit("a.py", 1, 5, 0.2, "1"),
            hit("a.py", 4, 9, 0.9, "2"),
            hit("a.py", 10, 12, 0.1, "3"),
            hit("a.py", 20, 22, 0.5, "4"),
            hit("b.py", 1, 3, 0.3, "5"),
        ]
    )
    got = sorted((s.path, s.start, s.end, s.score) for s in spans)
    assert got == [("a.py", 1, 12, 0.9), ("a.py", 20, 22, 0.5), ("b.py", 1, 3, 0.3)]
    merged = next(s for s in spans if s.start == 1 and s.path == "a.py")
    assert merged.text().split("\n") == [f"line {n}" for n in range(1, 13)]


def test_pack_respects_budget_and_orders_by_score() -> None:
    spans = merge(
        [hit("a.py", 1, 10, 0.5, "1"), hit("b.py", 1, 2, 0.9, "2"), hit("c.py", 1, 30, 0.7, "3")]
    )
    result = pack(spans, budget=30, count_tokens=words)
    assert result.tokens_used <= 30
    assert [s.path for s in result.snippets] == ["b.py", "a.py"]  # c.py (61 words) does not fit
    assert result.tokens_used == sum(s.tokens for s in result.snippets)


def test_oversized_best_snippet_is_trimmed_not_dropped() -> None:
    result = pack(merge([hit("a.py", 1, 100, 0.9, "1")]), budget=50, count_tokens=words)
    assert len(result.snippets) == 1
    snip = result.snippets[0]
    assert snip.tokens <= 50 and snip.start_line == 1 and snip.end_line < 100


def test_duplicate_text_in_two_files_is_kept_once() -> None:
    a, b = hit("a.py", 1, 3, 0.9, "1"), hit("b.py", 1, 3, 0.8, "2")
    result = pack(merge([a, b]), budget=1000, count_tokens=words)
    assert [s.path for s in result.snippets] == ["a.py"]


def test_a_later_snippet_that_does_not_fit_keeps_its_head_when_room_is_left() -> None:
    # Hits are whole functions: a long second hit still contributes its signature and head.
    result = pack(merge([hit("a.py", 1, 20, 0.9, "1"), hit("b.py", 1, 200, 0.8, "2")]), budget=150,
                  count_tokens=words)
    assert [s.path for s in result.snippets] == ["a.py", "b.py"]
    b = result.snippets[1]
    assert b.start_line == 1 and b.end_line < 200 and result.tokens_used <= 150
    assert b.text.split("\n") == [f"line {n}" for n in range(1, b.end_line + 1)]
