"""Bounds of a search or context request, shared by the query engine, the LSP and MCP
request models and both CLI paths: the one place they are written.

Constants and plain predicates only (nothing but `typing` imported), so that the CLI's
daemon client (`server.cli_fast`) checks a request exactly as the full CLI and the engine
do without importing either. Each caller words its own error (a flag, a JSON field).
"""

from __future__ import annotations

from typing import Final, Literal, TypeGuard, get_args

MAX_RESULTS: Final = 200  # results per search
SearchMode = Literal["hybrid", "vector", "lexical"]
SEARCH_MODES: Final[tuple[str, ...]] = get_args(SearchMode)
MIN_BUDGET: Final = 16  # tokens: the smallest context budget the CLI accepts


def limit_ok(limit: object) -> TypeGuard[int]:
    """A result count from 1 to MAX_RESULTS (a bool is not a count)."""
    return not isinstance(limit, bool) and isinstance(limit, int) and 1 <= limit <= MAX_RESULTS


def min_score_ok(floor: object) -> TypeGuard[float]:
    """A relevance floor: a number from 0 to 1."""
    return not isinstance(floor, bool) and isinstance(floor, (int, float)) and 0.0 <= floor <= 1.0


def mode_ok(mode: object) -> TypeGuard[SearchMode]:
    return mode in SEARCH_MODES


def modes_in_words() -> str:
    """"hybrid, vector or lexical", for messages and help."""
    return f"{', '.join(SEARCH_MODES[:-1])} or {SEARCH_MODES[-1]}"
