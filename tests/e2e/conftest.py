"""Setup shared by the e2e modules: the environment the servers they start inherit.

Not autouse: a module opts in with `pytest.mark.usefixtures(...)` in its `pytestmark`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test's servers: importable `server` from this checkout, a state dir of the test's own."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("FORGE_INDEXER_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(scope="module")
def module_server_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The same for a module whose tests share one server: one state dir for the module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(REPO))
        mp.setenv("FORGE_INDEXER_STATE_DIR", str(tmp_path_factory.mktemp("lsp-state")))
        yield


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the two-root fixture workspace, shared by a module's tests (a module
    whose tests each need their own defines its own `ws`)."""
    from tests.e2e.helpers import copy_workspace

    return copy_workspace(tmp_path_factory.mktemp("e2e"))
