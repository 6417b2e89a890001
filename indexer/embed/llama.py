"""Text → L2-normalised vectors with llama.cpp, fast on a CPU and shared by one process.

`LlamaEmbedder` drives llama.cpp through its low-level C API (llama_decode +
llama_get_embeddings_seq) rather than `llama_cpp.Llama.embed`, which reached 0.63x
sentence-transformers' speed here where this module reaches 1.6x-2x. What made it fast
(the table is in tests/bench/bench_embed.py's docstring; 2 CPU threads):

* flash attention on: the biggest single win for this small encoder;
* several sequences packed into one llama_decode call up to a small token budget
  (512): larger matrix products, fewer graph runs. Each sequence only attends to itself,
  and llama.cpp's CPU flash-attention skips the masked blocks, so packing adds little
  attention cost — unlike a 2048+ token batch, whose mask and scratch buffers dominate;
* one batch allocated once, its token/position/sequence arrays filled with numpy slices
  (sorting inputs by length and pooling inside llama.cpp measured neutral; both kept, as
  they pack similar lengths together and avoid copying per-token vectors out);
* f16 weights, or bf16 where the CPU computes in bf16 natively (AVX512-BF16: 1.2-1.4x
  faster; `modelPrecision`, chosen in indexer.embed.model). f32 is no faster, Q8_0 and smaller
  quantisations lose accuracy for no gain.

Threading: a llama.cpp context is not thread-safe, so one lock serialises every call into
it. Document batches are processed one packed decode at a time and, between decodes,
give way to any waiting query, so an interactive search waits for at most one decode
(tens of milliseconds) behind background indexing. Tokenisation only reads the
vocabulary and has its own lock, so `count_tokens` never waits behind a decode.

GPU: `n_gpu_layers` is passed to llama.cpp as is (0 = CPU, -1 = all layers). It only has an
effect with a GPU build of llama-cpp-python, made by reinstalling it with
`CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python`
(CUDA) or `CMAKE_ARGS="-DGGML_METAL=on"` (Apple Metal); `forge-indexer model` reports
whether the installed build can offload.
"""

from __future__ import annotations

import ctypes
import json
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import llama_cpp as llama
import numpy as np
import numpy.typing as npt

from indexer.core.errors import ModelInvalid
from indexer.core.protocols import Vectors
from indexer.core.settings import Settings
from indexer.embed.model import (
    ModelSpec,
    effective_threads,
    ensure_model_file,
    model_fingerprint,
    resolve_model,
)

log = logging.getLogger(__name__)

# Largest number of tokens in one llama_decode call (never below the model's max input).
# 256-512 measured best for all-MiniLM-L6-v2 on 2 cores; 2048 was ~20% slower.
TOKEN_BUDGET = 512
MAX_SEQS_PER_BATCH = 64
_UBATCH_MULTIPLE = 64  # token budgets are rounded up to this (see LlamaEmbedder.__init__)
_TOKEN_CACHE_SIZE = 4096  # count_tokens results reused by embed_documents
_QUERY_CACHE_SIZE = 256  # recent query vectors

# ggml log levels: 1 debug, 2 info, 3 warn, 4 error, 5 continues the previous line.
# Info is load chatter (hundreds of lines per model): demoted to DEBUG.
_LOG_LEVELS = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
_backend_lock = threading.Lock()
_backend_ready = False
_last_level = logging.DEBUG
_recent_errors: deque[str] = deque(maxlen=4)  # quoted in our exceptions when a load fails


@llama.llama_log_callback
def _llama_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    # llama.cpp logs through this hook instead of printing: nothing reaches fd 1 (an LSP
    # stdio stream), and its messages land in our log with sensible levels.
    global _last_level
    py_level = _last_level if level == 5 else _LOG_LEVELS.get(level, logging.DEBUG)
    _last_level = py_level
    message = text.decode("utf-8", "replace").rstrip()
    if py_level >= logging.ERROR and message:
        _recent_errors.append(message)
    if log.isEnabledFor(py_level):
        log.log(py_level, "llama.cpp: %s", message)


def _llama_reason() -> str:
    reason = "; ".join(_recent_errors)
    _recent_errors.clear()
    return f" (llama.cpp: {reason})" if reason else ""


def _init_backend() -> None:
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            llama.llama_log_set(_llama_log, ctypes.c_void_p(0))
            llama.llama_backend_init()
            _backend_ready = True


def load_vocab(path: Path) -> Any:
    """A llama.cpp model with only its vocabulary and hyperparameters loaded (no weights):
    enough to tokenise exactly as the full model does, in milliseconds and a few MB.
    Free it with `llama.llama_model_free`."""
    _init_backend()
    mparams = llama.llama_model_default_params()
    mparams.vocab_only = True
    model = llama.llama_model_load_from_file(str(path).encode(), mparams)
    if not model:
        raise ModelInvalid(
            f"llama.cpp could not read the vocabulary of {path}{_llama_reason()}. The file may be "
            "damaged, or the model may need a newer llama-cpp-python."
        )
    return model


def model_dim(model: Any) -> int:
    """The dimension of the model's output vectors (read from its hyperparameters)."""
    return int(llama.llama_model_n_embd_out(model) or llama.llama_model_n_embd(model))


def model_identity(spec: ModelSpec, path: Path, dim: int) -> str:
    """Name, content hash, dimension, input cap and prefixes: anything that changes vectors.

    Shared by the local and the remote embedder: the same model gives the same identity,
    hence the same index config hash, whichever of them computes the vectors."""
    return json.dumps(
        {
            "name": spec.name,
            "sha256": model_fingerprint(path)[:32],
            "dim": dim,
            "max_tokens": spec.max_tokens,
            "input_tokens": spec.input_tokens,
            "query_prefix": spec.query_prefix,
            "document_prefix": spec.document_prefix,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


class Tokenizer:
    """A model's own tokenizer: exact input ids, truncated to `max_tokens` keeping the
    special tokens at both ends, as sentence-transformers does.

    It only reads the vocabulary and has its own lock, so tokenising never waits behind a
    decode. Results are cached: the chunker counts every chunk and embed_documents then
    reuses the ids instead of tokenising again.
    """

    def __init__(self, model: Any, max_tokens: int) -> None:
        self._vocab: Any = llama.llama_model_get_vocab(model)
        self.max_tokens = max_tokens
        self._lock = threading.Lock()  # scratch buffer + cache
        self._buf = (llama.llama_token * 1024)()
        self._cache: OrderedDict[str, tuple[npt.NDArray[np.int32], int]] = OrderedDict()
        self.head, self.tail = self._special_wrapping()

    def _raw(self, text: str, add_special: bool) -> list[int]:
        """Caller holds `_lock`."""
        if not self._vocab:
            raise RuntimeError("this embedder was closed")  # the vocabulary is freed memory now
        data = text.encode("utf-8", "replace")
        need = len(data) + 16  # no tokenizer yields more tokens than bytes (+ specials)
        if len(self._buf) < need:
            self._buf = (llama.llama_token * max(need, 2 * len(self._buf)))()
        n = llama.llama_tokenize(self._vocab, data, len(data), self._buf, len(self._buf), add_special, False)
        if n < 0:  # defensive: a tokenizer that expands text past our bound
            self._buf = (llama.llama_token * (-n))()
            n = llama.llama_tokenize(self._vocab, data, len(data), self._buf, -n, add_special, False)
        return list(self._buf[:n])

    def _special_wrapping(self) -> tuple[list[int], list[int]]:
        """The special tokens the model puts around every input ([CLS] … [SEP] for BERT).

        Found by comparing a tokenisation with and without them, so truncation can keep
        them for any model (BERT needs its [SEP]; last-token pooling needs its EOS).
        """
        with self._lock:
            bare = self._raw("a", False)
            full = self._raw("a", True)
        for i in range(len(full) - len(bare) + 1):
            if full[i : i + len(bare)] == bare:
                return full[:i], full[i + len(bare) :]
        return [], []

    def room(self, limit: int) -> int:
        """Tokens of text that fit between the special tokens in an input of `limit`."""
        return max(limit - len(self.head) - len(self.tail), 0)

    def cut(self, ids: npt.NDArray[np.int32], limit: int) -> npt.NDArray[np.int32]:
        """`encode`'s ids cut to `limit` tokens, keeping the special tokens at the end."""
        if len(ids) <= limit:
            return ids
        tail = len(self.tail)
        return np.concatenate([ids[: len(self.head) + self.room(limit)], ids[len(ids) - tail :]])

    def encode(self, text: str) -> tuple[npt.NDArray[np.int32], int]:
        """(input ids, untruncated length) for `text` as given, special tokens included."""
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
            body = self._raw(text, False)
            ids = np.array(self.head + body[: self.room(self.max_tokens)] + self.tail, dtype=np.int32)
            ids.flags.writeable = False  # shared through the cache
            entry = (ids, len(self.head) + len(body) + len(self.tail))
            self._cache[text] = entry
            if len(self._cache) > _TOKEN_CACHE_SIZE:
                self._cache.popitem(last=False)
            return entry

    def truncate_text(self, text: str, limit: int | None = None) -> str:
        """The longest prefix of `text` that `encode` (or `cut` to `limit`) keeps whole: for
        a server that takes text (and tokenises it again), the same input ids as local
        truncation.

        A binary search over character prefixes; for WordPiece the prefix found ends on a
        token boundary, so its ids are exactly the truncated ids.
        """
        limit = self.max_tokens if limit is None else min(limit, self.max_tokens)
        full = self.encode(text)[1]
        if full <= limit:
            return text
        room = self.room(limit)
        lo, hi = 0, len(text)
        with self._lock:
            want = self._raw(text, False)[:room]
            while lo < hi:  # the largest n with len(tokens(text[:n])) <= room
                mid = (lo + hi + 1) // 2
                if len(self._raw(text[:mid], False)) <= room:
                    lo = mid
                else:
                    hi = mid - 1
            if self._raw(text[:lo], False) != want:
                # Cut inside a word into as many pieces as its whole ("tokeniza" and
                # "tokenization" are both 2): the exact cut is at most a word further on.
                for end in range(lo + 1, min(len(text), lo + 64) + 1):
                    if self._raw(text[:end], False) == want:
                        return text[:end]
        return text[:lo]

    def close(self) -> None:
        """Forget the vocabulary (its owner frees the model right after)."""
        with self._lock:
            self._vocab = None


class QueryCache:
    """Recent query vectors: a search over several roots, a context request that searches
    twice, or a user repeating a query all embed the same text once."""

    def __init__(self, size: int = _QUERY_CACHE_SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Vectors] = OrderedDict()

    def get(self, text: str) -> Vectors | None:
        with self._lock:
            hit = self._items.get(text)
            if hit is not None:
                self._items.move_to_end(text)
            return hit

    def put(self, text: str, vector: Vectors) -> Vectors:
        vector.flags.writeable = False  # shared through the cache
        with self._lock:
            self._items[text] = vector
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return vector


class LlamaEmbedder:
    """The `indexer.core.protocols.Embedder` for any GGUF embedding model, run by llama.cpp.

    Build it with `get_embedder(settings)`, which shares one instance per process.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        n_threads: int,
        n_gpu_layers: int = 0,
        token_budget: int = TOKEN_BUDGET,
        max_seqs: int = MAX_SEQS_PER_BATCH,
        flash_attn: bool = True,
    ) -> None:
        """Load the model (converting the bundled one first if needed).

        `token_budget`, `max_seqs` and `flash_attn` exist for the benchmark's tuning sweep;
        the defaults are the measured best.
        """
        _init_backend()
        self.spec = spec
        path = ensure_model_file(spec)
        self.path = path
        self.n_threads = n_threads
        self.n_gpu_layers = n_gpu_layers

        mparams = llama.llama_model_default_params()
        mparams.n_gpu_layers = n_gpu_layers
        model = llama.llama_model_load_from_file(str(path).encode(), mparams)
        if not model:
            raise ModelInvalid(
                f"llama.cpp could not load {path}{_llama_reason()}. The file may be damaged, or "
                "the model may need a newer llama-cpp-python."
            )
        self._model = model
        log.info("loaded the embedding model %s", path.name)
        self._dim = model_dim(model)
        if self._dim != spec.dim:
            log.warning("model %s reports %d dimensions, metadata said %d", path, self._dim, spec.dim)
        self._max_tokens = spec.max_tokens
        # A multiple of 64: llama.cpp 0.3.36 aborts the whole process (GGML_ASSERT in
        # ggml_mul_mat) on the first decode when n_ubatch is not one, which a model whose
        # context is 514 (RoBERTa-style) or a maxTokens like 600 would otherwise give.
        self._budget = -(-max(token_budget, self._max_tokens) // _UBATCH_MULTIPLE) * _UBATCH_MULTIPLE
        self._ctx: Any = None
        try:
            self._ctx = self._new_context(max_seqs, flash_attn)
            pooling = llama.llama_pooling_type(self._ctx)
            if pooling == llama.LLAMA_POOLING_TYPE_RANK:
                raise ModelInvalid(f"{path} is a reranker (rank pooling), not an embedding model.")
        except BaseException:
            self._free_native()  # a failed load must not leak the native model
            raise
        self._memory = llama.llama_get_memory(self._ctx)  # None for encoders like BERT
        self._pool_in_numpy = pooling == llama.LLAMA_POOLING_TYPE_NONE
        self._n_seq_max = int(llama.llama_n_seq_max(self._ctx))

        # One batch for the lifetime of the context, backed by numpy arrays so that filling
        # it is a few slice assignments instead of a Python loop per token.
        n = self._budget
        self._tok = np.zeros(n, np.int32)
        self._pos = np.zeros(n, np.int32)
        self._n_seq_id = np.ones(n, np.int32)
        self._seq = np.zeros(n, np.int32)
        self._out = np.ones(n, np.int8)  # every token is an output: pooling needs them all
        int_p = ctypes.POINTER(ctypes.c_int32)
        base = self._seq.ctypes.data
        self._seq_ptrs = (int_p * n)(*[ctypes.cast(base + 4 * k, int_p) for k in range(n)])
        batch = llama.llama_batch(
            n_tokens=0,
            token=self._tok.ctypes.data_as(int_p),
            embd=ctypes.POINTER(ctypes.c_float)(),  # NULL: the input is token ids
            pos=self._pos.ctypes.data_as(int_p),
            n_seq_id=self._n_seq_id.ctypes.data_as(int_p),
            seq_id=ctypes.cast(self._seq_ptrs, ctypes.POINTER(int_p)),
            logits=self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)),
        )
        self._batch = batch
        self._positions = np.arange(n, dtype=np.int32)

        self._ctx_lock = threading.Lock()  # every call into the llama context
        self._turn = threading.Condition()  # guards _queries_waiting
        self._queries_waiting = 0
        self._tokenizer = Tokenizer(model, self._max_tokens)
        self._query_cache = QueryCache()
        self._model_id: str | None = None

    # ----------------------------------------------------------------------------------
    # setup

    def _new_context(self, max_seqs: int, flash_attn: bool) -> Any:
        params = llama.llama_context_default_params()
        params.n_ctx = self._budget
        params.n_batch = self._budget
        params.n_ubatch = self._budget  # encoders need the whole batch in one ubatch
        params.n_seq_max = max(1, min(max_seqs, int(llama.llama_max_parallel_sequences())))
        params.embeddings = True
        params.pooling_type = llama.LLAMA_POOLING_TYPE_UNSPECIFIED  # the model's own pooling
        params.n_threads = self.n_threads
        params.n_threads_batch = self.n_threads
        # Decoder-based embedders keep a KV cache; unified, every packed sequence may use all of it.
        params.kv_unified = True
        params.no_perf = True
        params.flash_attn_type = (
            llama.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else llama.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        ctx = llama.llama_init_from_model(self._model, params)
        if not ctx and flash_attn:
            # Some GPU backends reject flash attention for some head sizes: let llama.cpp decide.
            params.flash_attn_type = llama.LLAMA_FLASH_ATTN_TYPE_AUTO
            ctx = llama.llama_init_from_model(self._model, params)
        if not ctx:
            raise ModelInvalid(f"llama.cpp could not create a context for {self.path}{_llama_reason()}.")
        return ctx

    # ----------------------------------------------------------------------------------
    # Embedder protocol

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def model_name(self) -> str:
        return self.spec.name

    @property
    def model_id(self) -> str:
        """Name, content hash, dimension, input cap and prefixes: anything that changes vectors."""
        if self._model_id is None:
            self._model_id = model_identity(self.spec, self.path, self._dim)
        return self._model_id

    def _tokenize(self, text: str) -> tuple[npt.NDArray[np.int32], int]:
        """(input ids, untruncated length) for `text` as given (see `Tokenizer.encode`)."""
        return self._tokenizer.encode(text)

    def tokens(self, text: str) -> npt.NDArray[np.int32]:
        """Model input ids for `text` as given (no prefix added), at most `max_tokens`."""
        return self._tokenize(text)[0]

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as a document: document prefix and special tokens included,
        before truncation (so callers can tell when a chunk is too long)."""
        return self._tokenize(self.spec.document_prefix + text)[1]

    @property
    def input_tokens(self) -> int:
        return self.spec.input_tokens

    def document_tokens(self, text: str) -> npt.NDArray[np.int32]:
        """The ids the model reads of a document: prefix added, cut to `input_tokens`."""
        return self._tokenizer.cut(self.tokens(self.spec.document_prefix + text), self.spec.input_tokens)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._embed([self.document_tokens(t) for t in texts], priority=False)

    def embed_query(self, text: str) -> Vectors:
        # Cached: one search over several roots, a context request that searches twice,
        # or a user repeating a query all embed the same text.
        hit = self._query_cache.get(text)
        if hit is not None:
            return hit
        ids = self.tokens(self.spec.query_prefix + text)
        return self._query_cache.put(text, self._embed([ids], priority=True)[0])

    # ----------------------------------------------------------------------------------
    # running the model

    def _groups(self, token_lists: Sequence[npt.NDArray[np.int32]]) -> list[list[int]]:
        """Pack inputs (shortest first) into decode calls of at most `_budget` tokens."""
        order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
        groups: list[list[int]] = []
        current: list[int] = []
        used = 0
        for i in order:
            n = len(token_lists[i])
            if current and (used + n > self._budget or len(current) >= self._n_seq_max):
                groups.append(current)
                current, used = [], 0
            current.append(i)
            used += n
        if current:
            groups.append(current)
        return groups

    def _embed(self, token_lists: Sequence[npt.NDArray[np.int32]], *, priority: bool) -> Vectors:
        out = np.zeros((len(token_lists), self._dim), dtype=np.float32)
        if priority:
            with self._turn:
                self._queries_waiting += 1
            try:
                with self._ctx_lock:
                    for group in self._groups(token_lists):
                        self._decode(group, token_lists, out)
            finally:
                with self._turn:
                    self._queries_waiting -= 1
                    self._turn.notify_all()
        else:
            for group in self._groups(token_lists):
                with self._turn:  # let waiting queries go first: they hold up a user
                    while self._queries_waiting:
                        self._turn.wait()
                with self._ctx_lock:
                    self._decode(group, token_lists, out)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, 1e-12)
        return out

    def _decode(self, group: list[int], token_lists: Sequence[npt.NDArray[np.int32]], out: Vectors) -> None:
        """One llama_decode over the sequences `group`; writes their pooled vectors into `out`.
        Caller holds `_ctx_lock`."""
        k = 0
        spans: list[tuple[int, int]] = []
        for seq, i in enumerate(group):
            ids = token_lists[i]
            n = len(ids)
            self._tok[k : k + n] = ids
            self._pos[k : k + n] = self._positions[:n]
            self._seq[k : k + n] = seq
            spans.append((k, n))
            k += n
        self._batch.n_tokens = k
        if not self._ctx:
            raise RuntimeError("this embedder was closed")
        if self._memory:
            llama.llama_memory_clear(self._memory, True)  # every batch starts from scratch
        rc = llama.llama_decode(self._ctx, self._batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc} on {k} tokens")
        if self._pool_in_numpy:
            # The model declares no pooling: average its per-token vectors ourselves.
            ptr = llama.llama_get_embeddings(self._ctx)
            tokens = np.ctypeslib.as_array(ptr, shape=(k, self._dim))
            for (start, n), i in zip(spans, group, strict=True):
                out[i] = tokens[start : start + n].mean(axis=0)
            return
        for seq, i in enumerate(group):
            ptr = llama.llama_get_embeddings_seq(self._ctx, seq)
            if not ptr:
                raise RuntimeError(f"llama.cpp returned no embedding for sequence {seq}")
            out[i] = np.ctypeslib.as_array(ptr, shape=(self._dim,))

    def close(self) -> None:
        """Free the native context and model (the instance is unusable afterwards)."""
        with _instances_lock:  # get_embedder must never hand out a closed instance
            for key in [k for k, v in _instances.items() if v is self]:
                del _instances[key]
        self._free_native()

    def _free_native(self) -> None:
        lock = getattr(self, "_ctx_lock", None) or threading.Lock()
        tokenizer = getattr(self, "_tokenizer", None)
        if tokenizer is not None:
            tokenizer.close()
        with lock:
            if self._ctx:
                llama.llama_free(self._ctx)
                self._ctx = None
            if self._model:
                llama.llama_model_free(self._model)
                self._model = None


_instances: dict[tuple[str, int, int, int, int, str, str], LlamaEmbedder] = {}
_instances_lock = threading.Lock()


def get_embedder(settings: Settings) -> LlamaEmbedder:
    """The process-wide embedder for these settings (loaded, and converted, on first use)."""
    spec = resolve_model(settings)
    n_threads = effective_threads(settings)
    key = (
        str(spec.path), n_threads, settings.n_gpu_layers, spec.max_tokens, spec.input_tokens,
        spec.query_prefix, spec.document_prefix,
    )
    with _instances_lock:
        emb = _instances.get(key)
        if emb is None:
            emb = LlamaEmbedder(spec, n_threads=n_threads, n_gpu_layers=settings.n_gpu_layers)
            _instances[key] = emb
        return emb
