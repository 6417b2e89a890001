"""The real embedder: the converted default model run by the real llama.cpp.

The converted GGUF lives in the normal model cache (the user cache dir, or
FORGE_INDEXER_CACHE_DIR if the caller set it), like every other integration test, so it is
converted once per machine; the model is loaded once per session.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from indexer.core.errors import ModelInvalid
from indexer.core.settings import Settings
from indexer.embed.llama import LlamaEmbedder, get_embedder
from indexer.embed.model import bundled_model_dir, convert_bert_to_gguf, read_vocab

pytestmark = pytest.mark.slow

CODE = [
    "def add(a, b):\n    return a + b",
    "def read_json(path):\n    with open(path) as fh:\n        return json.load(fh)",
    "for i in range(10):\n    print(i * i)",
    "class Stack:\n    def __init__(self):\n        self.items = []\n    def push(self, x):\n        self.items.append(x)",
    "SELECT name, COUNT(*) FROM users GROUP BY name HAVING COUNT(*) > 1;",
    "fn main() { println!(\"hello\"); }",
]


@pytest.fixture(scope="session")
def emb() -> LlamaEmbedder:
    return get_embedder(Settings())


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_shape_dtype_and_normalisation(emb: LlamaEmbedder) -> None:
    assert emb.dim == 384 and emb.max_tokens == 128  # the bundled model's default cap (maxTokens)
    docs = emb.embed_documents(CODE)
    assert docs.shape == (len(CODE), 384) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    query = emb.embed_query("add two numbers")
    assert query.shape == (384,) and query.dtype == np.float32
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
    assert emb.embed_documents([]).shape == (0, 384)
    assert emb.embed_documents([""]).shape == (1, 384)


def test_same_instance_per_settings(emb: LlamaEmbedder) -> None:
    assert get_embedder(Settings()) is emb


def test_deterministic(emb: LlamaEmbedder) -> None:
    a = emb.embed_documents(CODE)
    b = emb.embed_documents(CODE)
    np.testing.assert_array_equal(a, b)


def test_batch_equals_one_by_one(emb: LlamaEmbedder) -> None:
    batch = emb.embed_documents(CODE * 5)  # several packed decodes
    for i, text in enumerate(CODE):
        alone = emb.embed_documents([text])[0]
        for j in range(5):
            assert cos(batch[i + j * len(CODE)], alone) > 0.9999
    assert cos(emb.embed_query(CODE[0]), batch[0]) > 0.9999  # no prefixes for this model


def test_code_is_closer_to_its_description_than_to_unrelated_text(emb: LlamaEmbedder) -> None:
    code = emb.embed_documents(["def add(a, b):\n    return a + b"])[0]
    related = cos(code, emb.embed_query("function that adds two numbers"))
    unrelated = cos(code, emb.embed_query("the weather in Paris is sunny today"))
    assert related > 0.4
    assert related > unrelated + 0.3


def test_count_tokens_agrees_with_the_vocabulary(emb: LlamaEmbedder) -> None:
    vocab = {tok: i for i, tok in enumerate(read_vocab(bundled_model_dir() / "vocab.txt"))}
    ids = list(emb.tokens("hello world"))
    assert ids == [vocab["[CLS]"], vocab["hello"], vocab["world"], vocab["[SEP]"]]
    assert emb.count_tokens("hello world") == 4
    assert emb.count_tokens("") == 2
    # WordPiece continuation: "embeddings" -> em ##bed ##ding ##s
    assert emb.count_tokens("embeddings") == 2 + 4


def test_over_long_input_is_truncated_not_an_error(emb: LlamaEmbedder) -> None:
    long_text = "def f(x):\n" + "    x = x + 1\n" * 500
    assert emb.count_tokens(long_text) > 1000  # the true size, so chunkers can split
    ids = emb.tokens(long_text)
    assert len(ids) == emb.max_tokens and ids[0] == 101 and ids[-1] == 102  # [CLS] ... [SEP]
    vec = emb.embed_documents([long_text])[0]
    assert np.isfinite(vec).all()
    head = emb.embed_documents(["def f(x):\n" + "    x = x + 1\n" * 80])[0]
    assert cos(vec, head) > 0.99  # the tail past the input cap was dropped
    assert emb.embed_query(long_text * 3).shape == (384,)


def test_documents_are_read_to_input_tokens_and_queries_to_max_tokens(emb: LlamaEmbedder) -> None:
    """The model reads the first `input_tokens` (80) of a chunk; a query keeps 128."""
    assert (emb.input_tokens, emb.max_tokens) == (80, 128)
    body = " ".join(f"step_{i} = compute(step_{i - 1})" for i in range(1, 60))
    text = "def pipeline(seed):\n    " + body
    ids = emb.document_tokens(text)
    assert len(ids) == 80 and ids[0] == 101 and ids[-1] == 102  # [CLS] ... [SEP]
    assert np.array_equal(ids[:-1], emb.tokens(text)[:79])
    head = emb._tokenizer.truncate_text(text, 80)  # the text that gives exactly those ids
    assert len(head) < len(text) // 2
    doc, doc_head = emb.embed_documents([text, head])
    assert cos(doc, doc_head) > 0.9999  # nothing past the first 80 tokens reached the model
    assert cos(emb.embed_query(text), emb.embed_query(head)) < 0.999  # queries are not cut at 80
    assert emb.count_tokens(text) > 128  # chunking still sees the true length


def test_model_id_is_stable_and_names_the_model(emb: LlamaEmbedder) -> None:
    assert emb.model_id == emb.model_id
    assert "all-MiniLM-L6-v2" in emb.model_id and '"dim":384' in emb.model_id
    assert '"input_tokens":80' in emb.model_id  # changing embedTokens re-embeds the index
    assert emb.model_name == "all-MiniLM-L6-v2"


def test_threads_get_the_same_vectors_as_one_thread(emb: LlamaEmbedder) -> None:
    expected = emb.embed_documents(CODE)
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        results[k] = emb.embed_documents(CODE) if k % 2 else np.stack([emb.embed_query(t) for t in CODE])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 4
    for got in results.values():  # packing differs between calls: equal up to float noise
        assert min(cos(a, b) for a, b in zip(got, expected, strict=True)) > 0.9999


def test_query_jumps_ahead_of_background_documents(emb: LlamaEmbedder) -> None:
    docs = [f"# module {i}\n" + CODE[i % len(CODE)] * 8 for i in range(400)]
    started = threading.Event()
    done = threading.Event()

    def background() -> None:
        started.set()
        emb.embed_documents(docs)
        done.set()

    worker = threading.Thread(target=background)
    worker.start()
    started.wait()
    time.sleep(0.2)  # well inside the document run
    emb.embed_query("read a json file")
    assert not done.is_set(), "the query waited for the whole document batch"
    worker.join(300)
    assert done.is_set()


def _bert_reference(weights: dict[str, np.ndarray], config: dict[str, object], ids: np.ndarray) -> np.ndarray:
    """Mean-pooled, normalised BERT embedding of one token sequence, in plain numpy (float64).

    An independent reference for what llama.cpp computes from our GGUF: it reads the
    original safetensors weights, not the converted file, and shares no code with either.
    """
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    eps = float(config["layer_norm_eps"])  # type: ignore[arg-type]
    heads = int(config["num_attention_heads"])  # type: ignore[call-overload]
    erf = np.vectorize(math.erf)

    def norm(x: np.ndarray, name: str) -> np.ndarray:
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[f"{name}.weight"] + w[f"{name}.bias"]

    def dense(x: np.ndarray, name: str) -> np.ndarray:
        return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    n = len(ids)
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = norm(x, "embeddings.LayerNorm")
    for i in range(int(config["num_hidden_layers"])):  # type: ignore[call-overload]
        p = f"encoder.layer.{i}"
        q, k, v = (dense(x, f"{p}.attention.self.{t}") for t in ("query", "key", "value"))
        d = q.shape[1] // heads
        split = [a.reshape(n, heads, d).transpose(1, 0, 2) for a in (q, k, v)]
        scores = split[0] @ split[1].transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        att = (scores / scores.sum(-1, keepdims=True)) @ split[2]
        x = norm(x + dense(att.transpose(1, 0, 2).reshape(n, -1), f"{p}.attention.output.dense"),
                 f"{p}.attention.output.LayerNorm")
        h = dense(x, f"{p}.intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))  # exact GELU
        x = norm(x + dense(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def test_matches_an_independent_numpy_bert(emb: LlamaEmbedder) -> None:
    """llama.cpp on our converted GGUF computes what the original weights define.

    (sentence-transformers agreed to cosine 0.999998 on 300 chunks in tests/bench/
    bench_embed.py; it needs PyTorch, so the default run checks against numpy instead.)
    """
    from safetensors.numpy import load_file

    model_dir = bundled_model_dir()
    weights = load_file(str(model_dir / "model.safetensors"))
    config = json.loads((model_dir / "config.json").read_text())
    ours = emb.embed_documents(CODE)
    for text, vec in zip(CODE, ours, strict=True):
        ref = _bert_reference(weights, config, np.asarray(emb.tokens(text), dtype=np.int64))
        assert cos(vec, ref) > 0.9999, text
    # Not a tautology: a different text's reference does not match.
    other = _bert_reference(weights, config, np.asarray(emb.tokens(CODE[1]), dtype=np.int64))
    assert cos(ours[0], other) < 0.99


def test_precisions_give_the_same_vectors_and_the_same_identity(emb: LlamaEmbedder) -> None:
    """modelPrecision: the real model converted to bf16 and to f16, run by llama.cpp, agrees
    to cosine 0.9999 (bf16 runs here whether or not the CPU has native bf16: emulated, it is
    only slower) and both embedders have one model id, so one index config hash."""
    vectors, ids = {}, {}
    for precision in ("f16", "bf16"):
        e = get_embedder(Settings(model_precision=precision))
        assert e.path.name.endswith(f".{precision}.gguf")
        vectors[precision], ids[precision] = e.embed_documents(CODE), e.model_id
    assert ids["f16"] == ids["bf16"] == emb.model_id
    agreement = np.sum(vectors["f16"] * vectors["bf16"], axis=1)
    assert agreement.min() > 0.9999, agreement
    assert not np.array_equal(vectors["f16"], vectors["bf16"])  # two files really ran


def test_tiny_conversion_runs_in_llama_cpp_with_wordpiece_tokens(tmp_path: Path) -> None:
    """Our converter's output for any BERT folder (here a tiny random one) is what llama.cpp expects."""
    from tests.unit.test_convert import make_bert_dir

    gguf_path = convert_bert_to_gguf(make_bert_dir(tmp_path / "tiny"), tmp_path / "tiny.gguf", name="tiny")
    tiny = get_embedder(Settings(model_path=gguf_path, n_threads=1))
    try:
        assert tiny.spec.source == "path" and tiny.dim == 8 and tiny.max_tokens == 24
        # [CLS]=3 hello=6 ##lo=7 world=8 ##s=9 [SEP]=4; [UNK]=2 for what the vocab lacks
        assert list(tiny.tokens("hello worlds")) == [3, 6, 8, 9, 4]
        assert list(tiny.tokens("Hello, hellolo")) == [3, 6, 2, 6, 7, 4]
        vecs = tiny.embed_documents(["hello world", "world hello hello"])
        assert vecs.shape == (2, 8) and np.isfinite(vecs).all()
    finally:
        tiny.close()
    with pytest.raises(RuntimeError, match="closed"):
        tiny.embed_documents(["a new text"])
    assert get_embedder(Settings(model_path=gguf_path, n_threads=1)) is not tiny


def test_a_context_that_is_not_a_multiple_of_64_embeds(tmp_path: Path) -> None:
    """RoBERTa-style models have 514 positions; with maxTokens at that length the packed
    batch once had 514 slots, and llama.cpp aborted the whole process on the first decode.
    Run in a child process so a regression fails this test instead of killing pytest."""
    from tests.unit.test_convert import make_bert_dir

    gguf_path = convert_bert_to_gguf(make_bert_dir(tmp_path / "tiny", ctx=514), tmp_path / "t.gguf", name="t514")
    script = (
        "import sys; from indexer.embed.llama import get_embedder; from indexer.core.settings import Settings\n"
        "e = get_embedder(Settings(model_path=sys.argv[1], max_tokens=514, n_threads=1))\n"
        "v = e.embed_documents(['hello world ' * 400, 'hello', 'world hello'])\n"
        "print(e.max_tokens, v.shape, bool((v == v).all()))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(gguf_path)], capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, f"embedding child exited {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.split() == ["514", "(3,", "8)", "True"]


def test_file_llama_cpp_cannot_load_is_model_invalid(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "broken-bert.gguf"
    writer = gguf.GGUFWriter(path, "bert")
    writer.add_context_length(512)
    writer.add_embedding_length(8)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_tokenizer_model("bert")
    writer.add_token_list(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    writer.add_tensor("token_embd.weight", np.zeros((5, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelInvalid, match="could not load"):
        get_embedder(Settings(model_path=path, n_threads=1))
