"""RemoteEmbedder against a fake /v1/embeddings server (httpx.MockTransport).

The fake computes its answers with the real local embedder, so they are the vectors a
real server running the same GGUF gives; it can also shuffle its answer's order, reject
texts, fail transiently, answer the wrong dimension or demand a credential. The real
llama.cpp server is exercised in tests/e2e/test_remote_embedder.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from indexer.core.errors import ForgeError, RemoteMismatch, RemoteUnavailable
from indexer.core.protocols import EmbedInputsFailed
from indexer.core.resilience import BreakerOpen
from indexer.core.settings import Settings
from indexer.embed.llama import LlamaEmbedder, get_embedder
from indexer.embed.model import resolve_model
from indexer.embed.remote import RemoteEmbedder, endpoint_url, get_remote_embedder, public_url

URL = "http://embed.test:8080"


@pytest.fixture(scope="module")
def local() -> LlamaEmbedder:
    return get_embedder(Settings())


class FakeServer:
    """An OpenAI-style embeddings endpoint backed by the local model."""

    def __init__(self, local: LlamaEmbedder) -> None:
        self.local = local
        self.requests: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.reject = "BAD-INPUT"  # texts containing this get `reject_status`
        self.reject_status = 400
        self.fail_next: list[int | type[Exception]] = []  # statuses/exceptions to answer first
        self.dim: int | None = None  # answer this many dimensions instead
        self.shuffle = True
        self.need_auth: tuple[str, str] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        self.headers.append(request.headers)
        if self.need_auth and request.headers.get(self.need_auth[0]) != self.need_auth[1]:
            return httpx.Response(401, json={"error": {"message": "invalid api key"}})
        if self.fail_next:
            what = self.fail_next.pop(0)
            if isinstance(what, int):
                return httpx.Response(what, json={"error": {"message": "busy"}})
            raise what("boom", request=request)
        texts = body["input"]
        if any(self.reject in t for t in texts):
            return httpx.Response(self.reject_status, json={"error": {"message": "cannot embed this"}})
        vecs = self.local.embed_documents(texts) * 3.0  # servers answer unnormalised vectors
        if self.dim is not None:
            vecs = np.zeros((len(texts), self.dim), np.float32) + 1
        data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)]
        if self.shuffle:
            data.reverse()
        return httpx.Response(200, json={"object": "list", "data": data, "model": body.get("model")})


@pytest.fixture
def server(local: LlamaEmbedder) -> FakeServer:
    return FakeServer(local)


@pytest.fixture
def make(server: FakeServer) -> Iterator[Any]:
    made: list[RemoteEmbedder] = []

    def _make(url: str = URL, **kw: Any) -> RemoteEmbedder:
        kw.setdefault("sleep", lambda s: None)
        emb = RemoteEmbedder(resolve_model(Settings()), url, transport=httpx.MockTransport(server), **kw)
        made.append(emb)
        return emb

    yield _make
    for e in made:
        e.close()


TEXTS = [f"def handler_{i}(request):\n    return respond(request, {i})\n" for i in range(70)]


def test_identity_and_tokens_are_the_local_model_s(make: Any, local: LlamaEmbedder) -> None:
    r = make()
    assert r.model_id == local.model_id and r.dim == local.dim and r.max_tokens == local.max_tokens
    assert r.input_tokens == local.input_tokens == 80
    long = "tokenization " * 500
    assert r.count_tokens(long) == local.count_tokens(long) and r.count_tokens("x = 1") == local.count_tokens("x = 1")


def test_vectors_match_local_in_input_order_and_batches(make: Any, server: FakeServer, local: LlamaEmbedder) -> None:
    r = make(batch_size=32)
    got = r.embed_documents(TEXTS)
    assert got.dtype == np.float32 and got.shape == (70, local.dim)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(got * local.embed_documents(TEXTS), axis=1)) > 0.9999
    assert [len(b["input"]) for b in server.requests] == [32, 32, 6]
    assert all(b["model"] == "all-MiniLM-L6-v2" for b in server.requests)


def test_long_inputs_are_truncated_locally_like_the_local_embedder(
    make: Any, server: FakeServer, local: LlamaEmbedder
) -> None:
    r = make()
    long = "def f(x):\n" + "    total = compute_tokenization(x) + 1\n" * 200
    got = r.embed_documents([long])
    sent = server.requests[-1]["input"][0]
    assert local.input_tokens < local.max_tokens  # cut to the model input, not to the chunk size
    assert len(sent) < len(long) and np.array_equal(local.tokens(sent), local.document_tokens(long))
    assert len(local.document_tokens(long)) == local.input_tokens
    assert float(got[0] @ local.embed_documents([long])[0]) > 0.9999


def test_one_bad_input_fails_alone(make: Any, server: FakeServer, local: LlamaEmbedder) -> None:
    r = make(batch_size=32)
    texts = list(TEXTS[:40])
    texts[13] = "BAD-INPUT " + texts[13]
    with pytest.raises(EmbedInputsFailed) as info:
        r.embed_documents(texts)
    exc = info.value
    assert set(exc.failed) == {13} and "HTTP 400: cannot embed this" in exc.failed[13]
    good = [i for i in range(40) if i != 13]
    assert np.isnan(exc.vectors[13]).all() and np.isfinite(exc.vectors[good]).all()
    want = local.embed_documents([texts[i] for i in good])
    assert np.min(np.sum(exc.vectors[good] * want, axis=1)) > 0.9999
    # the batch of 32, its halves down to the one text: about 2*log2(32) requests, not 32
    assert len(server.requests) <= 2 + 2 * 5 + 1


def test_http_500_on_one_input_is_split_not_retried(make: Any, server: FakeServer) -> None:
    server.reject_status = 500
    r = make(batch_size=8)
    texts = list(TEXTS[:8])
    texts[5] = "BAD-INPUT"
    with pytest.raises(EmbedInputsFailed) as info:
        r.embed_documents(texts)
    assert set(info.value.failed) == {5}
    assert r.remote_target.state == "closed" and r.remote_target.retried == 0


def test_a_server_that_rejects_everything_is_an_error_not_n_reports(make: Any, server: FakeServer) -> None:
    server.reject = ""  # every text contains ""
    r = make(batch_size=4)
    with pytest.raises(RemoteUnavailable, match="rejects every text"):
        r.embed_documents(TEXTS[:4])


def test_transient_failures_are_retried(make: Any, server: FakeServer) -> None:
    server.fail_next = [503, httpx.ReadTimeout, 429]
    r = make(retries=4)
    assert r.embed_documents(TEXTS[:3]).shape == (3, 384)
    assert r.remote_target.retried == 3 and r.remote_target.state == "closed"


def test_server_down_opens_the_breaker(make: Any, server: FakeServer) -> None:
    server.fail_next = [httpx.ConnectError] * 100
    r = make(retries=1)
    for _ in range(2):
        with pytest.raises(RemoteUnavailable, match="did not answer after 2 attempts"):
            r.embed_documents(TEXTS[:2])
    with pytest.raises(RemoteUnavailable):
        r.embed_documents(TEXTS[:2])  # 5th failure in a row: the breaker opens
    status = r.remote_target.status()
    assert status["breaker"] == "open" and "boom" in str(status["lastError"])
    before = len(server.requests)
    t = time.monotonic()
    with pytest.raises(BreakerOpen, match="is down"):
        r.embed_query("anything")
    assert len(server.requests) == before and time.monotonic() - t < 0.5


def test_wrong_dimension_is_a_mismatch(make: Any, server: FakeServer) -> None:
    server.dim = 768
    with pytest.raises(RemoteMismatch, match=r"768-dimensional.*has 384"):
        make().embed_documents(["x"])


def test_verify_accepts_the_same_model_and_refuses_another(make: Any, server: FakeServer, local: LlamaEmbedder) -> None:
    r = make()
    assert r.verify(local) >= 0.999

    class Other:
        def embed_documents(self, texts: list[str]) -> Any:
            v = np.roll(local.embed_documents(texts), 1, axis=1)  # a different model
            return v

    with pytest.raises(RemoteMismatch, match=r"cosine -?0\.\d+ < 0\.999.*unset embedderUrl") as info:
        r.verify(Other())
    assert URL in str(info.value)


def test_query_cache_avoids_repeated_calls(make: Any, server: FakeServer, local: LlamaEmbedder) -> None:
    r = make()
    a = r.embed_query("parse a config file")
    b = r.embed_query("parse a config file")
    assert a is b and len(server.requests) == 1
    assert float(a @ local.embed_query("parse a config file")) > 0.9999


def test_auth_header_is_sent_and_never_shown(make: Any, server: FakeServer) -> None:
    secret = "s3cr3t-token-value"
    server.need_auth = ("Authorization", f"Bearer {secret}")
    r = make(auth_header="Authorization", auth_value=f"Bearer {secret}")
    r.embed_documents(["x"])
    assert server.headers[-1]["authorization"] == f"Bearer {secret}"
    wrong = make(auth_header="Authorization", auth_value="Bearer nope")
    with pytest.raises(ForgeError, match="refused our credentials") as info:
        wrong.embed_documents(["x"])
    assert "nope" not in str(info.value) and secret not in str(info.value)
    assert secret not in json.dumps(r.remote_target.status())
    with pytest.raises(ForgeError, match="remote-secret set embedder"):
        make(auth_header="Authorization", auth_value=None)


def test_url_forms(make: Any, server: FakeServer) -> None:
    assert endpoint_url("http://h:1") == "http://h:1/v1/embeddings"
    assert endpoint_url("http://h:1/v1/") == "http://h:1/v1/embeddings"
    assert endpoint_url("http://h:1/proxy/v1/embeddings") == "http://h:1/proxy/v1/embeddings"
    assert public_url("http://user:pw@h:1/v1") == "http://h:1/v1"
    for url in (URL, URL + "/v1", URL + "/v1/"):
        make(url).embed_documents(["x"])
    r = make("http://user:pw@embed.test:8080")
    assert "pw" not in r.url and "pw" not in json.dumps(r.remote_target.status())


def test_404_says_how_to_fix(local: LlamaEmbedder) -> None:
    r = RemoteEmbedder(resolve_model(Settings()), URL,
                       transport=httpx.MockTransport(lambda req: httpx.Response(404, text="Not Found")))
    with pytest.raises(ForgeError, match=r"no embeddings endpoint.*--embedding"):
        r.embed_documents(["x"])
    with pytest.raises(ForgeError, match=r"no embeddings endpoint"):
        r.embed_query("x")  # a query too gets a one-line error, never a bare HTTP exception
    r.close()


def test_a_rejected_input_shared_by_copies_fails_for_every_file(tmp_path: Path, make: Any, server: FakeServer) -> None:
    # Copies give the model one input, embedded once: its rejection must reach every file.
    from indexer.workspace import Workspace

    root = tmp_path / "ws"
    root.mkdir()
    (root / "good.py").write_text("def good(x):\n    return x * 2\n")
    for name in ("bad.py", "copy_of_bad.py"):
        (root / name).write_text("def broken():\n    return 'BAD-INPUT'\n")
    ws = Workspace(root, Settings(state_dir=tmp_path / "state"), embedder=make(batch_size=4))
    try:
        summary = ws.index()
        assert sorted(e.path for e in summary.errors) == ["bad.py", "copy_of_bad.py"]
        assert ws.store.sql.pending_counts()[0] == 2
        assert ws.search("multiply x by 2", limit=1)[0].path == "good.py"
    finally:
        ws.close()


def test_get_remote_embedder_shares_one_instance_per_server(tmp_path: Path) -> None:
    s = Settings(embedder_url="http://127.0.0.1:9", state_dir=tmp_path)
    a = get_remote_embedder(s, None)
    try:
        assert get_remote_embedder(s, None) is a
        assert get_remote_embedder(s.model_copy(update={"embedder_url": "http://127.0.0.1:10"}), None) is not a
    finally:
        a.close()


def test_pipeline_stores_the_rest_and_reports_the_bad_chunk(tmp_path: Path, make: Any, server: FakeServer) -> None:
    from indexer.workspace import Workspace

    root = tmp_path / "ws"
    root.mkdir()
    for i in range(6):
        (root / f"m{i}.py").write_text(f"def f{i}(x):\n    return x * {i}\n")
    (root / "bad.py").write_text("def broken():\n    return 'BAD-INPUT'\n")
    emb = make(batch_size=4)
    ws = Workspace(root, Settings(state_dir=tmp_path / "state"), embedder=emb)
    try:
        summary = ws.index()
        assert [e.path for e in summary.errors] == ["bad.py"]
        assert "could not be embedded" in summary.errors[0].error
        store = ws.store
        assert store.sql.pending_counts()[0] == 1  # only the bad chunk waits for a vector
        assert store.vectors.count() == store.sql.counts()["chunks"] - 1
        assert store.repair() == {}
        assert ws.search("multiply x by 3", limit=3)[0].path == "m3.py"
    finally:
        ws.close()
