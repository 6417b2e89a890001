"""Shared test set-up: every test gets a private state dir; the model cache is shared.

The converted default model is cached in the normal user cache dir (unless the caller set
FORGE_INDEXER_CACHE_DIR), so it is converted once per machine, not once per test run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


@pytest.fixture(autouse=True)
def _private_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test may touch the user's real index state or config."""
    monkeypatch.setenv("FORGE_INDEXER_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    yield


def pytest_report_header(config: pytest.Config) -> str:
    return f"forge-indexer cache: {os.environ.get('FORGE_INDEXER_CACHE_DIR', '(user cache dir)')}"
