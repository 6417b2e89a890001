"""Natural-language search finds the right function in a multi-language workspace."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

CASES = [
    ("exponential backoff with random jitter", "src/net/retry.py", "backoff_delays"),
    ("add up the amounts of all invoice lines", "services/billing/invoice.go", "Total"),
    ("turn a blog post title into a url slug", "scripts/slugify.rb", "slugify"),
    ("token bucket that limits calls per second", "services/billing/RateLimiter.java", "RateLimiter"),
    ("override configuration with environment variables", "src/config/loader.py", "apply_env_overrides"),
    ("ring buffer that overwrites the oldest element", "native/ringbuf.rs", None),
    ("check whether an email address is valid", "scripts/validate_email.php", "is_valid_email"),
    ("compress a directory into a tarball", "scripts/backup.sh", "compress_directory"),
    ("swap rows and columns of a matrix", "native/matrix.cpp", "transpose"),
    ("initials from a person's name for an avatar", "web/Avatar.tsx", "initialsOf"),
]


@pytest.mark.parametrize(("query", "path", "symbol"), CASES, ids=[c[0] for c in CASES])
def test_description_finds_function(indexed, query: str, path: str, symbol: str | None) -> None:  # type: ignore[no-untyped-def]
    _, ws = indexed
    hits = ws.search(query, limit=5)
    assert hits, "no results"
    top = [(h.path, h.symbol) for h in hits]
    assert any(h.path == path for h in hits), top
    if symbol is not None:
        assert any(h.path == path and h.symbol and symbol in h.symbol for h in hits), top


def test_results_have_one_based_inclusive_lines_matching_the_file(indexed) -> None:  # type: ignore[no-untyped-def]
    root, ws = indexed
    hit = ws.search("parse a duration like 1h30m into seconds", limit=1)[0]
    assert hit.path == "src/config/loader.py" and hit.symbol == "parse_duration"
    lines = (root / hit.path).read_text().splitlines()
    assert lines[hit.start_line - 1].startswith("def parse_duration")
    assert hit.preview.splitlines() == lines[hit.start_line - 1 : hit.end_line]


def test_language_and_path_filters(indexed) -> None:  # type: ignore[no-untyped-def]
    _, ws = indexed
    assert {h.language for h in ws.search("total amount", limit=10, languages=["go"])} == {"go"}
    assert all(h.path.startswith("web/") for h in ws.search("cart", limit=10, paths=["web/**"]))
    assert ws.search("cart", limit=10, paths=["nothing/here/*"]) == []


def test_lexical_identifier_query_finds_snake_and_camel(indexed) -> None:  # type: ignore[no-untyped-def]
    _, ws = indexed
    hits = ws.search("add item to cart", limit=3, mode="lexical")
    assert hits[0].symbol == "addItemToCart"


def test_bad_queries_get_clear_errors(indexed) -> None:  # type: ignore[no-untyped-def]
    from indexer.core.errors import InvalidQuery

    _, ws = indexed
    for kwargs in ({"query": "   "}, {"query": "x", "limit": 0}, {"query": "x", "languages": "go"},
                   {"query": "x", "paths": [1]}):
        with pytest.raises(InvalidQuery):
            ws.search(**kwargs)  # type: ignore[arg-type]


def test_context_packs_relevant_snippets_into_budget(indexed) -> None:  # type: ignore[no-untyped-def]
    _, ws = indexed
    result = ws.context("how is the invoice total computed", budget=300)
    assert 0 < result.tokens_used <= 300
    assert result.snippets[0].path == "services/billing/invoice.go"
    assert sum(s.tokens for s in result.snippets) == result.tokens_used
    keys = [(s.path, s.start_line) for s in result.snippets]
    assert len(keys) == len(set(keys))


def test_context_at_a_position(indexed) -> None:  # type: ignore[no-untyped-def]
    _, ws = indexed
    result = ws.context(path="web/cart.js", line=4, budget=400)
    first = result.snippets[0]
    assert first.path == "web/cart.js" and first.start_line <= 4 <= first.end_line


def test_symbols(indexed) -> None:  # type: ignore[no-untyped-def]
    _, ws = indexed
    got = ws.symbols("RingBuf")
    assert got[0].name == "RingBuffer" and got[0].path == "native/ringbuf.rs"
    names = [m.name for m in ws.symbols("cart total")]
    assert "cartTotal" in names[:3]


IMPL_OVER_TEST = [
    ("exponential backoff with random jitter", "src/net/retry.py", "tests/test_retry.py"),
    ("add up the amounts of all invoice lines", "services/billing/invoice.go", "services/billing/invoice_test.go"),
]


@pytest.mark.parametrize(("query", "impl", "test"), IMPL_OVER_TEST, ids=[c[0] for c in IMPL_OVER_TEST])
def test_implementation_ranks_above_its_test(indexed, query: str, impl: str, test: str) -> None:  # type: ignore[no-untyped-def]
    _, ws = indexed
    paths = [h.path for h in ws.search(query, limit=10)]
    assert paths[0] == impl, paths
    assert test in paths, paths  # the test is demoted, not hidden
    tests_first = [h.path for h in ws.search(f"test that checks {query}", limit=3)]
    assert test in tests_first, tests_first  # asked for tests, they come back to the top


def test_scores_are_calibrated_relevance_with_a_floor(indexed) -> None:  # type: ignore[no-untyped-def]
    from indexer.search import query as query_mod

    _, ws = indexed
    good = ws.search("exponential backoff with random jitter", limit=5)
    noise = ws.search("quantum chromodynamics lattice gauge simulation", limit=5)
    assert 0.0 <= noise[0].score < good[0].score <= 1.0  # comparable across queries
    floor = (good[0].score + noise[0].score) / 2
    kept = query_mod.search(ws.store, ws.embedder, "quantum chromodynamics lattice gauge simulation", min_score=floor)
    assert kept == []


def test_go_hit_range_starts_at_its_function(indexed) -> None:  # type: ignore[no-untyped-def]
    root, ws = indexed
    hit = next(h for h in ws.search("is the invoice past its due date", limit=5) if h.symbol == "IsOverdue")
    lines = (root / hit.path).read_text().splitlines()
    assert lines[hit.start_line - 1].startswith("func (inv *Invoice) IsOverdue(")
