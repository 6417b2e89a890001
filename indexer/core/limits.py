"""Bounds of a search or context request, shared by the query engine and both CLI paths.

A module of constants only, so that the CLI's daemon client (`server.cli_fast`) checks a
request exactly as the full CLI and the engine do without importing either.
"""

from __future__ import annotations

from typing import Final

MAX_RESULTS: Final = 200  # results per search
SEARCH_MODES: Final = ("hybrid", "vector", "lexical")
MIN_BUDGET: Final = 16  # tokens: the smallest context budget the CLI accepts
