"""`embedderUrl` against a real llama.cpp embeddings server (`python -m llama_cpp.server`).

The server runs the same converted default GGUF the local embedder loads, on a free
loopback port. The test indexes through it, compares its vectors with the local model's,
stops it in the middle of a run (the run stops with RemoteUnavailable, the breaker opens and
`status` says why, nothing is inconsistent), starts it again and resumes the run without
embedding anything twice.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from indexer.core.errors import RemoteUnavailable
from indexer.core.settings import Settings
from indexer.core.types import Progress


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """`python -m llama_cpp.server` with embeddings on, on 127.0.0.1:`port`."""

    def __init__(self, model: Path, port: int, log_dir: Path, *extra: str) -> None:
        self.model, self.port, self.log_dir, self.extra = model, port, log_dir, extra
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 90.0) -> None:
        """Start and wait until it answers; fails fast with its stderr if it exits."""
        self.starts += 1
        err_path = self.log_dir / f"llama-server-{self.starts}.err"
        with open(err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--embedding", "true",
                 "--host", "127.0.0.1", "--port", str(self.port), *self.extra],
                stdout=subprocess.DEVNULL, stderr=err,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"llama_cpp.server exited with {self.proc.returncode}: {err_path.read_text()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/v1/models", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"llama_cpp.server did not answer in {timeout} s: {err_path.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture(scope="module")
def local():  # type: ignore[no-untyped-def]
    from indexer.embed.llama import get_embedder

    return get_embedder(Settings())


@pytest.fixture
def llama_server(tmp_path: Path, local) -> Iterator[LlamaServer]:  # type: ignore[no-untyped-def]
    server = LlamaServer(local.path, free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def make_workspace(root: Path, files: int) -> Path:
    root.mkdir()
    (root / "config.py").write_text(
        "import tomllib\n\n\ndef load_toml_settings(path):\n"
        '    """Read the settings file written in TOML and return a dict."""\n'
        '    with open(path, "rb") as f:\n        return tomllib.load(f)\n'
    )
    for i in range(files):
        body = "\n\n".join(
            f"def step_{i}_{j}(values):\n    '''Stage {j} of pipeline {i}.'''\n"
            f"    return [v * {i} + {j} for v in values if v % {j + 2}]"
            for j in range(6)
        )
        (root / f"mod_{i:03d}.py").write_text(body + "\n")
    return root


def remote_settings(tmp_path: Path, server: LlamaServer) -> Settings:
    return Settings(state_dir=tmp_path / "state", embedder_url=server.url, remote_timeout_s=10)


def vectors_cached(ws) -> int:  # type: ignore[no-untyped-def]
    return int(ws.store.sql.conn.execute("SELECT count(*) FROM vectors").fetchone()[0])


def test_remote_vectors_match_the_local_model(llama_server: LlamaServer, local) -> None:  # type: ignore[no-untyped-def]
    from indexer.embed.remote import SAMPLE, get_remote_embedder

    remote = get_remote_embedder(Settings(embedder_url=llama_server.url + "/v1"), None)
    try:
        assert remote.model_id == local.model_id
        texts = [*SAMPLE, "x" * 3000, "tokenization " * 400]  # the last two are truncated
        cos = np.sum(remote.embed_documents(texts) * local.embed_documents(texts), axis=1)
        assert float(cos.min()) >= 0.999, cos
        assert remote.verify(local) >= 0.999
        assert float(remote.embed_query("read toml") @ local.embed_query("read toml")) >= 0.999
    finally:
        remote.close()


def test_index_through_the_server_stop_it_mid_run_and_resume(
    tmp_path: Path, llama_server: LlamaServer, local  # type: ignore[no-untyped-def]
) -> None:
    from indexer.pipeline import model_input
    from indexer.store.index import PendingText
    from indexer.workspace import Workspace

    root = make_workspace(tmp_path / "ws", files=60)  # ~180 chunks: 2 pages of phase 2
    ws = Workspace(root, remote_settings(tmp_path, llama_server))
    stopped: list[int] = []

    def stop_after_first_page(p: Progress) -> None:
        if p.phase == "embed" and not stopped:
            stopped.append(p.chunks_done)
            llama_server.stop()

    try:
        assert type(ws.embedder).__name__ == "RemoteEmbedder"
        ws.embedder.remote_target.reset_s = 3.0  # type: ignore[attr-defined]  # (30 s by default)
        with pytest.raises(RemoteUnavailable, match=llama_server.url):
            ws.index(on_progress=stop_after_first_page)
        assert stopped and 0 < stopped[0] < ws.store.sql.counts()["chunks"]

        # The breaker is open, status says why, and SQLite and Chroma agree.
        remote = ws.status()["remote"]["embedder"]  # type: ignore[index]
        assert remote["breaker"] == "open", remote
        assert remote["url"] == llama_server.url and "connect" in str(remote["lastError"]).lower(), remote
        store = ws.store
        done_before = vectors_cached(ws)
        waiting = store.sql.pending_counts()[1]
        assert done_before >= 128 and waiting > 0
        assert done_before + waiting == store.sql.conn.execute(
            "SELECT count(DISTINCT text_hash) FROM chunks").fetchone()[0]
        assert store.vectors.count() == store.sql.counts()["chunks"] - store.sql.pending_counts()[0]
        assert store.repair() == {}  # nothing to fix
        assert ws.search("read the TOML settings file", mode="lexical", limit=1)  # lexical still answers
        # The default (hybrid) search answers from the lexical side while the embedder is down.
        degraded = ws.search("TOML settings file", limit=3)
        assert degraded and degraded[0].symbol == "load_toml_settings", [(h.path, h.symbol) for h in degraded]
        with pytest.raises(RemoteUnavailable):
            ws.search("TOML settings file", mode="vector", limit=3)

        # The server comes back: once the breaker lets a trial through, the run resumes.
        llama_server.start()
        time.sleep(max(0.0, 3.0 - 0.5))
        summary = ws.index()
        assert summary.chunks_embedded == waiting  # only what was missing: nothing twice
        assert vectors_cached(ws) == done_before + waiting
        counts = ws.store.sql.counts()
        assert ws.store.vectors.count() == counts["chunks"] > 128
        assert ws.store.sql.pending_counts() == (0, 0)
        assert ws.status()["remote"]["embedder"]["breaker"] == "closed"  # type: ignore[index]
        hits = ws.search("read the TOML settings file", mode="vector", limit=3)
        assert hits[0].symbol == "load_toml_settings", [(h.path, h.symbol) for h in hits]

        # The vectors the index holds are the local model's vectors.
        got = ws.store.sql.conn.execute(
            "SELECT c.text_hash, c.text, c.path, substr(c.body, 1, instr(c.body || char(10), char(10)) - 1),"
            " c.kind, c.language, v.vector FROM chunks c JOIN vectors v ON v.text_hash = c.text_hash LIMIT 20"
        ).fetchall()
        stored = np.stack([np.frombuffer(row[-1], dtype=np.float32) for row in got])
        inputs = [model_input(PendingText(*row[:-1])) for row in got]
        cos = np.sum(stored * local.embed_documents(inputs), axis=1)
        assert float(cos.min()) >= 0.999
    finally:
        ws.close()
