"""The bounds of a search request are written once (indexer.core.limits): the engine, the
LSP request model and the CLI's daemon client accept and refuse the same values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from indexer.core.errors import InvalidQuery
from indexer.core.limits import MAX_RESULTS, SEARCH_MODES
from indexer.search import query
from server import cli_fast
from server.params import SearchParams

LIMITS = [0, 1, MAX_RESULTS, MAX_RESULTS + 1, -3]
FLOORS = [-0.1, 0.0, 0.5, 1.0, 1.01]
MODES = [*SEARCH_MODES, "semantic", "HYBRID"]


def _engine(limit: int = 10, floor: float = 0.0, mode: str = "hybrid") -> bool:
    try:
        query.validate("q", limit, None, None)
        query._check_floor(floor)
        query._check_mode(mode)
    except InvalidQuery:
        return False
    return True


def _lsp(limit: int = 10, floor: float = 0.0, mode: str = "hybrid") -> bool:
    try:
        SearchParams.model_validate({"query": "q", "limit": limit, "minScore": floor, "mode": mode})
    except ValidationError:
        return False
    return True


def _fast_cli(limit: int = 10, floor: float = 0.0, mode: str = "hybrid") -> bool:
    try:
        cli_fast.parse(["search", "q", "-k", str(limit), "--min-score", str(floor), "--mode", mode])
    except cli_fast.Defer:  # the full CLI then refuses it with its own message
        return False
    return True


@pytest.mark.parametrize("limit", LIMITS)
def test_limits_agree(limit: int) -> None:
    want = 1 <= limit <= MAX_RESULTS
    assert (_engine(limit=limit), _lsp(limit=limit), _fast_cli(limit=limit)) == (want, want, want)


@pytest.mark.parametrize("floor", FLOORS)
def test_score_floors_agree(floor: float) -> None:
    want = 0.0 <= floor <= 1.0
    assert (_engine(floor=floor), _lsp(floor=floor), _fast_cli(floor=floor)) == (want, want, want)


@pytest.mark.parametrize("mode", MODES)
def test_modes_agree(mode: str) -> None:
    want = mode in ("hybrid", "vector", "lexical")
    assert (_engine(mode=mode), _lsp(mode=mode), _fast_cli(mode=mode)) == (want, want, want)
