"""Embedding on a remote llama.cpp server (`embedderUrl`), with vectors equal to local ones.

`RemoteEmbedder` is the `indexer.core.protocols.Embedder` that POSTs batches of texts to an
OpenAI-style `/v1/embeddings` endpoint, as served by `python -m llama_cpp.server --model
X.gguf --embedding true` and by llama.cpp's `llama-server --embedding`. It must serve the
same GGUF the local embedder would load, and everything that decides what a vector means
stays local and exact:

* tokenisation (`count_tokens`, truncation to `max_tokens`, the special tokens) uses the
  local model's vocabulary, loaded vocab-only (no weights, a few MB);
* `model_id`, `dim` and `max_tokens` are the local model's, so the index config hash is the
  same as with the local embedder: the vectors are interchangeable, which `verify()` proves
  (cosine >= 0.999 against the local model on a fixed sample) before an index is built with
  them, and every answer's dimension is checked;
* inputs are truncated locally (the server gets the longest prefix of the text that gives
  exactly the locally truncated ids) with the same document/query prefixes; answers are
  sorted by their `index` and L2-normalised here.

Every call goes through one `RemoteTarget("embedder", ...)` (timeouts, retries with jitter
for transient failures, a circuit breaker shown in `status`). A request the server rejects
(HTTP 400/413/422/500) is split in halves down to single texts, so one bad text fails
alone: `embed_documents` then raises `EmbedInputsFailed` with the others' vectors, and the
pipeline stores those and reports the one.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import numpy as np

from indexer.core.errors import ForgeError, RemoteMismatch, RemoteUnavailable
from indexer.core.protocols import EmbedInputsFailed, Vectors
from indexer.core.resilience import RemoteTarget
from indexer.core.settings import Settings
from indexer.embed.llama import QueryCache, Tokenizer, load_vocab, model_identity
from indexer.embed.model import ModelSpec, effective_threads, ensure_model_file, resolve_model

log = logging.getLogger(__name__)

BATCH_SIZE = 32  # texts per request: bounds a request's size and the work a failure repeats
MIN_COSINE = 0.999
# Statuses that mean "the server read this request and could not embed it": split and retry.
_REJECTED = frozenset({400, 413, 422, 500})
_TRANSIENT = frozenset({408, 425, 429, 502, 503, 504})

# The fixed sample `verify()` compares (short, long, non-ASCII, and one over max_tokens).
SAMPLE = (
    "def add(a, b):\n    return a + b\n",
    "class LRUCache:\n    def get(self, key):\n        node = self.map.get(key)\n        if node is None:\n"
    "            return -1\n        self._move_to_front(node)\n        return node.value\n",
    'fn main() {\n    let name = "café 日本語";\n    println!("hello {}", name);\n}\n',
    "SELECT u.id, count(*) FROM users u JOIN orders o ON o.user_id = u.id GROUP BY u.id;\n",
    "export function debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); "
    "t = setTimeout(() => fn(...a), ms); }; }\n" * 12,
)


class RemoteHTTPError(Exception):
    """The server answered with an error status (its text, never our request headers)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}" if detail else f"HTTP {status}")
        self.status = status


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the connection failed or timed out, or the server said "later"."""
    if isinstance(exc, RemoteHTTPError):
        return exc.status in _TRANSIENT or (exc.status >= 500 and exc.status not in _REJECTED | {501})
    return isinstance(exc, httpx.TransportError)  # connect/read/write errors and timeouts


def endpoint_url(base: str) -> str:
    """`…/v1/embeddings` for a base URL given with or without `/v1` (or the full path)."""
    url = base.rstrip("/")
    if url.endswith("/embeddings"):
        return url
    if not url.endswith("/v1"):
        url += "/v1"
    return url + "/embeddings"


def public_url(url: str) -> str:
    """The URL without any user:password part, for messages, logs and status."""
    try:
        return str(httpx.URL(url).copy_with(userinfo=b""))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "(an invalid URL)"


class RemoteEmbedder:
    """The `indexer.core.protocols.Embedder` that embeds on a llama.cpp-compatible server."""

    def __init__(
        self,
        spec: ModelSpec,
        url: str,
        *,
        model_name: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 4,
        auth_header: str | None = None,
        auth_value: str | None = None,
        batch_size: int = BATCH_SIZE,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        n_threads: int = 1,
    ) -> None:
        if auth_header and not auth_value:
            raise ForgeError(
                f"embedderAuthHeader is set to {auth_header!r} but no credential is stored for the "
                "embedder: run `forge-indexer remote-secret set embedder`, or unset embedderAuthHeader."
            )
        self.spec = spec
        self.path = ensure_model_file(spec)
        self.url = public_url(url)
        self.endpoint = endpoint_url(url)
        self.server_model = model_name or spec.name
        self.batch_size = max(1, batch_size)
        self._n_threads = n_threads
        self._vocab_model: Any = load_vocab(self.path)
        self._tokenizer = Tokenizer(self._vocab_model, spec.max_tokens)
        self._dim = spec.dim
        self._model_id: str | None = None
        self._query_cache = QueryCache()
        headers = {auth_header: auth_value} if auth_header and auth_value else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)
        self.remote_target = RemoteTarget(
            "embedder", self.url, transient=is_transient, retries=retries, sleep=sleep
        )
        self._close_lock = threading.Lock()

    # -- Embedder protocol -------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self.spec.max_tokens

    @property
    def input_tokens(self) -> int:
        return self.spec.input_tokens

    @property
    def model_id(self) -> str:
        """The local embedder's identity for the same model (same config hash)."""
        if self._model_id is None:
            self._model_id = model_identity(self.spec, self.path, self._dim)
        return self._model_id

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as a document, counted locally with the model's own tokenizer."""
        return self._tokenizer.encode(self.spec.document_prefix + text)[1]

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """(len(texts), dim) normalised vectors; `EmbedInputsFailed` if the server rejects
        some texts (the others' vectors are in it)."""
        limit = self.spec.input_tokens
        inputs = [self._tokenizer.truncate_text(self.spec.document_prefix + t, limit) for t in texts]
        out = np.full((len(inputs), self._dim), np.nan, dtype=np.float32)
        failed: dict[int, str] = {}
        for start in range(0, len(inputs), self.batch_size):
            idx = list(range(start, min(start + self.batch_size, len(inputs))))
            self._embed_recovering(inputs, idx, out, failed)
        if failed:
            raise EmbedInputsFailed(
                f"the embedder at {self.url} rejected {len(failed)} of {len(inputs)} texts", out, failed
            )
        return out

    def embed_query(self, text: str) -> Vectors:
        hit = self._query_cache.get(text)
        if hit is not None:
            return hit
        query = self._tokenizer.truncate_text(self.spec.query_prefix + text)
        try:
            vector = self._post([query])[0]
        except RemoteHTTPError as exc:  # a 4xx: not worth retrying, but a one-line error
            raise self._refused(exc) from None
        return self._query_cache.put(text, vector)

    # -- the matching check --------------------------------------------------------------
    def verify(self, local: Any | None = None) -> float:
        """Raise `RemoteMismatch` unless the server's vectors match the local model's
        (cosine >= MIN_COSINE on `SAMPLE`); returns the lowest cosine found.

        Loads the full local model for the comparison (or uses `local`, an Embedder) and
        frees it again: called once, when an index is first built or reset.
        """
        remote = self.embed_documents(SAMPLE)
        own = None
        if local is None:
            from indexer.embed.llama import LlamaEmbedder  # the weights: only for this check

            own = local = LlamaEmbedder(self.spec, n_threads=self._n_threads)
        try:
            reference = local.embed_documents(SAMPLE)
        finally:
            if own is not None:
                own.close()
        cosine = float(np.min(np.sum(remote * reference, axis=1)))
        if not cosine >= MIN_COSINE:  # NaN fails too
            raise RemoteMismatch(
                f"the embedder at {self.url} gives vectors unlike the local model {self.spec.name} "
                f"(cosine {cosine:.4f} < {MIN_COSINE} on sample code), so the index will not mix "
                f"them. Serve the same GGUF ({self.path}) with its own (mean) pooling, or unset "
                "embedderUrl to embed locally."
            )
        log.info("the embedder at %s matches the local model (cosine >= %.6f)", self.url, cosine)
        return cosine

    # -- requests ----------------------------------------------------------------------
    def _embed_recovering(self, inputs: list[str], idx: list[int], out: Vectors, failed: dict[int, str]) -> None:
        """Embed inputs[idx] into out[idx]; a rejected request is retried in halves, so
        only the texts the server rejects on their own end up in `failed`."""
        try:
            out[idx] = self._post([inputs[i] for i in idx])
            return
        except RemoteHTTPError as exc:
            if exc.status not in _REJECTED:
                raise self._refused(exc) from None
            if len(idx) == 1:
                failed[idx[0]] = str(exc)
                log.warning("the embedder at %s rejected a text (%s)", self.url, exc)
                return
        half = len(idx) // 2
        self._embed_recovering(inputs, idx[:half], out, failed)
        self._embed_recovering(inputs, idx[half:], out, failed)
        if all(i in failed for i in idx) and len(idx) == self.batch_size > 1:
            # Not one bad text: the server rejects everything (wrong model loaded, broken).
            raise RemoteUnavailable(
                f"the embedder at {self.url} rejects every text ({failed[idx[0]]}). Check the "
                "server's log, or unset embedderUrl to embed locally."
            )

    def _refused(self, exc: RemoteHTTPError) -> ForgeError:
        if exc.status in (401, 403):
            return ForgeError(
                f"the embedder at {self.url} refused our credentials ({exc}): store the right one "
                "with `forge-indexer remote-secret set embedder` and check embedderAuthHeader."
            )
        if exc.status in (404, 405):
            return ForgeError(
                f"the embedder at {self.url} has no embeddings endpoint at {public_url(self.endpoint)} "
                f"({exc}): start it with embeddings on (`--embedding`), or fix embedderUrl."
            )
        return ForgeError(f"the embedder at {self.url} refused the request ({exc}).")

    def _post(self, inputs: list[str]) -> Vectors:
        """One request through the breaker: (len(inputs), dim) normalised, in input order."""

        def once() -> Any:
            response = self._client.post(self.endpoint, json={"input": inputs, "model": self.server_model})
            if response.status_code >= 400:
                raise RemoteHTTPError(response.status_code, _error_text(response))
            return response.json()

        try:
            answer = self.remote_target.call(once)
        except ValueError as exc:  # not JSON (a proxy's HTML page...)
            raise RemoteMismatch(
                f"the embedder at {self.url} did not answer with JSON ({exc}): check embedderUrl."
            ) from None
        return self._parse(answer, len(inputs))

    def _parse(self, answer: Any, n: int) -> Vectors:
        try:
            rows = sorted(answer["data"], key=lambda d: int(d["index"]))
            vecs = np.array([r["embedding"] for r in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteMismatch(
                f"the embedder at {self.url} answered in an unknown format ({type(exc).__name__}: "
                f"{exc}); it must speak the OpenAI /v1/embeddings API (llama.cpp's server does)."
            ) from None
        if vecs.ndim != 2 or vecs.shape[0] != n or [int(r["index"]) for r in rows] != list(range(n)):
            shape = "x".join(map(str, vecs.shape))
            if vecs.ndim == 3:  # pooling "none": one vector per token
                shape += " (one vector per token: the server runs with pooling none)"
            raise RemoteMismatch(
                f"the embedder at {self.url} answered {shape} vectors for {n} texts. Serve the same "
                f"GGUF ({self.path}) with its own pooling, or unset embedderUrl."
            )
        if vecs.shape[1] != self._dim:
            raise RemoteMismatch(
                f"the embedder at {self.url} answers {vecs.shape[1]}-dimensional vectors; the model "
                f"{self.spec.name} has {self._dim}. Serve the same GGUF ({self.path}), or unset "
                "embedderUrl to embed locally."
            )
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        return vecs

    def close(self) -> None:
        """Close the HTTP client and free the vocabulary."""
        with self._close_lock:
            with _instances_lock:
                for key in [k for k, v in _instances.items() if v is self]:
                    del _instances[key]
            self._client.close()
            self._tokenizer.close()
            if self._vocab_model:
                import llama_cpp as llama

                llama.llama_model_free(self._vocab_model)
                self._vocab_model = None


def _error_text(response: httpx.Response) -> str:
    """The server's own error message, short (llama.cpp puts it in {"error": {"message"}})."""
    try:
        body = response.json()
        err = body.get("error", body) if isinstance(body, dict) else body
        text = err.get("message", err.get("detail", err)) if isinstance(err, dict) else err
        text = str(text)
    except ValueError:
        text = response.text
    text = " ".join(text.split())
    return text if len(text) < 160 else text[:157] + "..."


_instances: dict[tuple[object, ...], RemoteEmbedder] = {}
_instances_lock = threading.Lock()


def get_remote_embedder(settings: Settings, auth_value: str | None) -> RemoteEmbedder:
    """The process-wide remote embedder for these settings: one breaker per server."""
    url = settings.embedder_url
    if not url:
        raise ForgeError("embedderUrl is not set.")
    spec = resolve_model(settings)
    secret = hashlib.sha256(auth_value.encode()).hexdigest() if auth_value else None
    key = (
        url, str(spec.path), spec.max_tokens, spec.input_tokens, spec.query_prefix, spec.document_prefix,
        settings.embedder_model, settings.embedder_auth_header, secret,
        settings.remote_timeout_s, settings.remote_retries,
    )
    with _instances_lock:
        emb = _instances.get(key)
        if emb is None:
            emb = RemoteEmbedder(
                spec, url, model_name=settings.embedder_model, timeout_s=settings.remote_timeout_s,
                retries=settings.remote_retries, auth_header=settings.embedder_auth_header,
                auth_value=auth_value, n_threads=effective_threads(settings),
            )
            _instances[key] = emb
        return emb
