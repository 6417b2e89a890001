"""Queries of every odd shape get an answer or a clear InvalidQuery, never a traceback,
within the usual latency (the real model, Chroma and SQLite on the polyglot fixture)."""

from __future__ import annotations

import time

import pytest

from indexer.core.errors import InvalidQuery

pytestmark = pytest.mark.slow

ODD = {
    "one character": "x",
    "one punctuation mark": "?",
    "only punctuation": "?!.,;:()[]{}<>*&^%$#@~`|\\/\"'",
    "10,000 characters": ("retry with backoff " * 600)[:10_000],
    "Japanese": "設定ファイルを読み込む関数",
    "Cyrillic": "повторить запрос с задержкой",  # noqa: RUF001
    "Arabic": "إعادة المحاولة مع التأخير",
    "emoji": "🔁 retry ⏱️",
    "code": "def backoff_delays(base: float, attempts: int) -> list[float]:",
    "a regular expression": r"^\s*(\w+)=(.*)$",
    "control characters": "retry\x00\x07\x1b[31m backoff",
    "a lone surrogate": "retry \udc80 backoff",
}


@pytest.mark.parametrize("query", list(ODD.values()), ids=list(ODD))
def test_odd_queries_answer_or_say_why(indexed, query: str) -> None:  # type: ignore[no-untyped-def]
    _, ws = indexed
    ws.search("warm up", limit=1)
    for mode in ("hybrid", "vector", "lexical"):
        t = time.perf_counter()
        try:
            hits = ws.search(query, limit=10, mode=mode)
        except InvalidQuery as exc:
            assert "'query'" in str(exc), exc  # names the bad parameter
        else:
            assert all(0.0 <= h.score <= 1.0 and h.path for h in hits)
        assert time.perf_counter() - t < 2.0, f"{mode} search of {query[:30]!r} took too long"


def test_code_and_identifiers_find_their_definition(indexed) -> None:  # type: ignore[no-untyped-def]
    _, ws = indexed
    hits = ws.search(ODD["code"], limit=3)
    assert hits and hits[0].symbol == "backoff_delays", [(h.path, h.symbol) for h in hits]
