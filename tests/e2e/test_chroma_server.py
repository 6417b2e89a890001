"""`chromaUrl`: the vectors on a real Chroma server (`chroma run` on a loopback port).

Index and search through it; kill -9 the indexer mid-run and the server mid-run; restart,
rerun, repair: chunks == vectors on the server, nothing duplicated.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.core.errors import RemoteUnavailable
from indexer.core.settings import Settings, load_settings
from indexer.workspace import Workspace
from tests.conftest import FIXTURES
from tests.e2e.chroma_helpers import ChromaServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    from indexer.embed.llama import get_embedder

    return get_embedder(Settings())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ChromaServer]:
    srv = ChromaServer(tmp_path / "chroma-server").start()
    yield srv
    srv.stop()


def _open(root: Path, url: str, state: Path, embedder, **extra: object) -> Workspace:  # type: ignore[no-untyped-def]
    return Workspace(root, Settings(state_dir=state, chroma_url=url, **extra), embedder=embedder)  # type: ignore[arg-type]


def _only_collection(server: ChromaServer) -> tuple[str, int]:
    cols = server.collections()
    assert len(cols) == 1, cols
    return next(iter(cols.items()))


def test_index_and_search_through_the_server(tmp_path: Path, server: ChromaServer, embedder) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "polyglot"
    shutil.copytree(FIXTURES / "polyglot", root, symlinks=True)
    with _open(root, server.url, tmp_path / "state", embedder) as ws:
        summary = ws.index()
        assert summary.errors == [] and summary.chunks_embedded > 0
        hits = ws.search("exponential backoff with random jitter", limit=5)
        assert any(h.path == "src/net/retry.py" and h.symbol == "backoff_delays" for h in hits), hits
        status = ws.status()
        assert status["remote"]["chroma"]["breaker"] == "closed"  # type: ignore[index]
        name, count = _only_collection(server)
        assert count == status["chunks"] == status["vectors"]
        # Namespaced per workspace and config, without the folder's path in it.
        assert name.startswith("forge-") and "polyglot" not in name and len(name) <= 64
        # Nothing local: no embedded Chroma folder was created.
        assert not (ws.state_dir / "chroma").exists()
        # The server holds vectors and minimal metadata, never the code itself.
        got = server.client().get_collection(name).get(limit=5, include=["documents", "metadatas"])
        assert got["documents"] is None or all(d is None for d in got["documents"])


def test_server_down_at_open_is_unavailable_not_corrupt(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    dead = ChromaServer(tmp_path / "never-started")  # a free port nobody listens on
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("def f():\n    return 1\n")
    with _open(root, dead.url, tmp_path / "state", embedder, remote_retries=1) as ws:
        with pytest.raises(RemoteUnavailable) as err:
            ws.index()
        assert dead.url in str(err.value) and "start it or unset chromaUrl" in str(err.value)
        assert not list((tmp_path / "state").glob("workspaces/*/chroma.quarantined-*"))
        assert ws.health()["state"] == "ok"


def _small_stdlib_workspace(dest: Path, files: int) -> Path:
    """The largest modules of the email package: a run of some seconds to kill."""
    src = Path(sysconfig.get_paths()["stdlib"]) / "email"
    dest.mkdir()
    for f in sorted(src.glob("*.py"), key=lambda p: -p.stat().st_size)[:files]:
        shutil.copy(f, dest / f.name)
    return dest


def test_kill_9_indexer_mid_run_then_rerun_repairs(tmp_path: Path, server: ChromaServer, embedder) -> None:  # type: ignore[no-untyped-def]
    root = _small_stdlib_workspace(tmp_path / "ws", 16)
    state = tmp_path / "state"
    env = {**os.environ, "FORGE_INDEXER_CHROMA_URL": server.url}
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "index", str(root), "--state-dir", str(state)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 300
    count = 0
    while time.time() < deadline and proc.poll() is None and count < 1:  # the first page is on the server
        time.sleep(0.2)
        count = sum(server.collections().values())
    assert proc.poll() is None, f"indexing ended before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert count >= 1

    with _open(root, server.url, state, embedder) as ws:
        summary = ws.index()
        assert summary.errors == [] and summary.files_unchanged >= 1  # the work before the kill was kept
        _name, on_server = _only_collection(server)
        sql_ids = ws.store.sql.all_chunk_ids()
        server_ids = ws.store.vectors.all_ids()
        assert server_ids == sql_ids and on_server == len(sql_ids)  # nothing missing, nothing extra
        assert ws.status()["semantic_coverage"] == 1.0


def test_kill_9_server_mid_run_then_restart_completes(tmp_path: Path, server: ChromaServer, embedder) -> None:  # type: ignore[no-untyped-def]
    root = _small_stdlib_workspace(tmp_path / "ws", 6)  # a few embedding pages
    state = tmp_path / "state"
    ws = _open(root, server.url, state, embedder)  # 4 retries: 5 failures open the breaker
    try:
        pages = 0

        def on_progress(p) -> None:  # type: ignore[no-untyped-def]
            nonlocal pages
            if p.phase == "embed":
                pages += 1
                if pages == 1:
                    server.kill()

        with pytest.raises(RemoteUnavailable) as err:
            ws.index(on_progress=on_progress)
        assert server.url in str(err.value)
        status = ws.status()
        assert status["remote"]["chroma"]["breaker"] == "open", status["remote"]  # type: ignore[index]
        assert status["last_error"] and server.url in str(status["last_error"])
        assert status["health"]["state"] == "ok"  # type: ignore[index]
        # Search keeps answering from the lexical index while the server is down.
        hits = ws.search("parse_headers message header parser", limit=5)
        assert hits
    finally:
        ws.close()

    server.start()  # same path, same port
    with _open(root, server.url, state, embedder) as ws2:
        summary = ws2.index()
        assert summary.errors == []
        sql_ids = ws2.store.sql.all_chunk_ids()
        assert ws2.store.vectors.all_ids() == sql_ids
        assert _only_collection(server)[1] == len(sql_ids) == ws2.status()["chunks"]


def test_chroma_url_in_workspace_file_is_ignored(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / ".forge-indexer.toml").write_text('chromaUrl = "http://attacker.example:8000"\nteamIndex = "x"\n')
    settings, warnings = load_settings(root)
    assert settings.chroma_url is None and settings.team_index is None
    text = json.dumps(warnings)
    assert "chroma" in text.lower() and "team" in text.lower(), warnings


def test_team_index_without_server_is_a_clear_error(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from indexer.core.errors import ForgeError

    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("def f():\n    return 1\n")
    with (Workspace(root, Settings(state_dir=tmp_path / "state", team_index="core"), embedder=embedder) as ws,
          pytest.raises(ForgeError, match="needs a Chroma server: set chromaUrl")):
        ws.index()


def test_auth_header_is_sent_from_the_secret(tmp_path: Path, server: ChromaServer, embedder) -> None:  # type: ignore[no-untyped-def]
    """The header named by chromaAuthHeader carries the keyring's value (here a stub
    `secrets` callable: the keyring itself is the server layer's, tested there)."""
    from indexer.core.errors import ForgeError

    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("def f():\n    return 1\n")
    settings = Settings(state_dir=tmp_path / "state", chroma_url=server.url, chroma_auth_header="X-Chroma-Token")
    with (Workspace(root, settings, embedder=embedder, secrets=lambda name: None) as ws,
          pytest.raises(ForgeError, match="remote-secret set chroma")):
        ws.index()
    with Workspace(root, settings, embedder=embedder, secrets=lambda name: "s3cret" if name == "chroma" else None) as ws:
        ws.index()
        client = ws.store.vectors._client  # type: ignore[union-attr]
        assert client._server._session.headers["X-Chroma-Token"] == "s3cret"
        assert "s3cret" not in json.dumps(ws.status())
