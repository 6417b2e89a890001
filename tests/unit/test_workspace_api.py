"""Every workspace has the interface its callers use, with the same signatures.

`indexer.Workspace`, the daemon's `RemoteWorkspace` and the unit tests' `FakeWorkspace`
are compared member by member against `indexer.core.workspace_api`: a member missing, or one
whose parameters, defaults or annotations differ from the protocol's, fails here (a
`runtime_checkable` isinstance would only see the names).
"""

from __future__ import annotations

import inspect

import pytest

from indexer.core.workspace_api import (
    INDEXING_MEMBERS,
    WORKSPACE_MEMBERS,
    IndexingWorkspace,
    WorkspaceLike,
)
from indexer.workspace import Workspace
from server.daemon.remote import RemoteWorkspace
from tests.unit.fake_server import FakeWorkspace

CASES = [
    (Workspace, IndexingWorkspace, INDEXING_MEMBERS),
    (FakeWorkspace, IndexingWorkspace, INDEXING_MEMBERS),
    (RemoteWorkspace, WorkspaceLike, WORKSPACE_MEMBERS),
]


def mismatches(cls: type, protocol: type, members: tuple[str, ...]) -> list[str]:
    """What `cls` lacks or spells differently, one line each (empty: it satisfies `protocol`)."""
    found = []
    for name in members:
        want = inspect.signature(getattr(protocol, name))
        impl = getattr(cls, name, None)
        if impl is None:
            found.append(f"{cls.__name__}.{name} is missing")
        elif (have := inspect.signature(impl)) != want:
            found.append(f"{cls.__name__}.{name}{have} is not {protocol.__name__}.{name}{want}")
    return found


def test_the_members_named_are_the_protocols_own() -> None:
    """The lists compared below are every method the protocols declare, and no more."""
    def methods(p: type) -> set[str]:
        return {n for n, v in vars(p).items() if inspect.isfunction(v) and not n.startswith("_")}

    assert set(WORKSPACE_MEMBERS) == methods(WorkspaceLike)
    assert set(INDEXING_MEMBERS) == methods(WorkspaceLike) | methods(IndexingWorkspace)


@pytest.mark.parametrize(("cls", "protocol", "members"), CASES, ids=[c[0].__name__ for c in CASES])
def test_each_workspace_has_the_protocols_members_and_signatures(
    cls: type, protocol: type, members: tuple[str, ...]
) -> None:
    assert mismatches(cls, protocol, members) == []


def test_a_missing_member_or_a_changed_signature_is_caught() -> None:
    """The comparison itself can fail: a parameter renamed, a default or annotation changed,
    a member dropped."""

    class Renamed(FakeWorkspace):
        def search(self, text: str, **kw: object) -> list:  # type: ignore[override]
            return []

    class OtherDefault(FakeWorkspace):
        def symbols(self, query: str, *, limit: int = 50) -> list:  # type: ignore[override]
            return []

    class Dropped(FakeWorkspace):
        reload_rules = None  # type: ignore[assignment]

    assert mismatches(Renamed, IndexingWorkspace, ("search",))
    assert mismatches(OtherDefault, IndexingWorkspace, ("symbols",))
    assert mismatches(Dropped, IndexingWorkspace, ("reload_rules",)) == ["Dropped.reload_rules is missing"]


def test_the_indexing_attributes_are_set_on_a_fake(tmp_path: object) -> None:
    """The server sets `repair_in_background` and `on_damage` on the workspace it opens."""
    from pathlib import Path

    ws = FakeWorkspace(Path(str(tmp_path)))
    for name in IndexingWorkspace.__annotations__:
        assert hasattr(ws, name), name
