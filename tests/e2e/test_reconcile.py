"""The periodic reconcile ("scheduled sync"): with the file watcher off and no save
notification, changes made on disk still reach the index, found by the daemon's stat scan.

The real server (`python -m server`) over stdio, the real model, Chroma and SQLite.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_lsp
from pytest_lsp import LanguageClient

from tests.e2e.helpers import (
    SERVER,
    accept_registrations,
    eventually,
    init_params,
    search,
    wait_indexed,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.usefixtures("module_server_env"),
]

@pytest_lsp.fixture(config=SERVER, scope="module")
async def client(lsp_client: LanguageClient, ws: Path):  # type: ignore[no-untyped-def]
    """One root, no file watcher, a reconcile every second."""
    accept_registrations(lsp_client)
    await lsp_client.initialize_session(
        init_params(ws, roots=("root_a",), options={"watch": False, "reconcileIntervalS": 1})
    )
    await wait_indexed(lsp_client, roots=1, timeout=600)
    yield
    await lsp_client.shutdown_session()


async def found(client: LanguageClient, query: str, rel: str, ws: Path) -> bool:
    hits = await search(client, query, limit=5)
    return any(h["uri"] == (ws / "root_a" / rel).as_uri() for h in hits)


async def test_changes_on_disk_are_found_without_a_watcher_or_a_save(client: LanguageClient, ws: Path) -> None:
    root = ws / "root_a"
    # Added, changed and deleted behind the server's back: no didSave, no watcher event.
    (root / "inventory.py").write_text(
        "def reorder_stock_when_low(sku, on_hand, threshold=10):\n"
        '    """Place a supplier order when warehouse stock of an item runs low."""\n'
        "    return on_hand < threshold\n"
    )
    retry = root / "http_retry.py"
    retry.write_text(retry.read_text() + (
        "\n\ndef jittered_sleep_between_attempts(attempt):\n"
        '    """Sleep a random jittered delay that grows with each failed attempt."""\n'
        "    return min(30.0, 0.5 * 2 ** attempt)\n"
    ))
    (root / "config_loader.py").unlink()

    async def all_seen() -> bool:
        return (
            await found(client, "reorder warehouse stock from the supplier", "inventory.py", ws)
            and await found(client, "jittered_sleep_between_attempts", "http_retry.py", ws)
            and not await found(client, "load configuration", "config_loader.py", ws)
        )

    took = await eventually(all_seen, timeout=60, every=0.25)
    print(f"\nreconcile: on-disk changes searchable after {took:.1f} s (interval 1 s, watcher off)")
    assert any("reconcile of root_a found" in m.message for m in client.log_messages), [
        m.message for m in client.log_messages[-20:]
    ]


async def test_nothing_changed_finds_nothing(client: LanguageClient, ws: Path) -> None:
    """Unchanged files: later reconciles queue no reindex (no new 'found' line)."""
    await eventually(lambda: _quiet(client), timeout=30, every=0.5)


async def _quiet(client: LanguageClient) -> bool:
    before = sum("reconcile of root_a found" in m.message for m in client.log_messages)
    await asyncio.sleep(3.5)  # two to four reconciles at a 1 s interval
    return sum("reconcile of root_a found" in m.message for m in client.log_messages) == before
