"""Two-phase indexing: everything is searchable by name and words before it is embedded,
and semantic coverage fills in behind, slice by slice, without losing anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.core.types import Progress

pytestmark = pytest.mark.slow


def test_lexical_and_symbols_answer_before_embedding(
    polyglot: Path, open_ws, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    import indexer.pipeline

    monkeypatch.setattr(indexer.pipeline, "EMBED_PAGE", 8)  # the fixture is smaller than a page
    ws = open_ws(polyglot)
    summary = ws.index(embed=False)
    assert summary.chunks_stored > 0 and summary.chunks_embedded == 0
    status = ws.status()
    assert status["chunks"] == summary.chunks_stored and status["vectors"] == 0
    assert status["semantic_coverage"] == 0.0
    hits = ws.search("fnv hash", mode="lexical", limit=3)
    assert hits and hits[0].path == "native/hash.c"
    assert ws.search("fnv hash", limit=3)  # hybrid degrades to what exists, no error
    assert [m.name for m in ws.symbols("RateLimiter")][:1] == ["RateLimiter"]

    ticks: list[Progress] = []
    left = ws.embed_pending(budget_s=0.0, on_progress=ticks.append)  # one page, then stop
    assert left > 0 and ticks and ticks[-1].phase == "embed"
    assert 0 < ticks[-1].chunks_done < ticks[-1].chunks_total
    middle = ws.status()["semantic_coverage"]
    assert isinstance(middle, float) and 0.0 < middle < 1.0
    assert ws.embed_pending() == 0
    final = ws.status()
    assert final["vectors"] == final["chunks"] and final["semantic_coverage"] == 1.0
    assert ws.store.vectors.all_ids() == ws.store.sql.all_chunk_ids()
    assert ws.search("FNV-1a hash of bytes", mode="vector", limit=1)[0].path == "native/hash.c"


def test_a_save_embeds_its_own_chunks_ahead_of_the_backlog(polyglot: Path, open_ws) -> None:  # type: ignore[no-untyped-def]
    ws = open_ws(polyglot)
    ws.index(embed=False)
    backlog = ws.store.sql.pending_counts()[1]
    f = polyglot / "src/net/retry.py"
    f.write_text(f.read_text() + "\n\ndef brand_new_helper(x):\n    return x + 1\n")
    summary = ws.index([str(f)])
    assert 0 < summary.chunks_embedded < backlog  # only the saved file's new chunks
    assert not ws.store.sql.pending_texts(100, ["src/net/retry.py"])[0]
    assert 0 < ws.store.sql.pending_counts()[1] < backlog  # the other files still wait
    hits = ws.search("brand new helper", mode="vector", limit=3)
    assert any(h.path == "src/net/retry.py" for h in hits)
