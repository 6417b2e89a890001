"""Local vs remote embedder (`embedderUrl`): index throughput and search latency, side by side.

    python tests/bench/bench_remote.py                 # stdlib `json` + part of `email` (~20 files)
    python tests/bench/bench_remote.py --corpus DIR    # any folder

The same small corpus is indexed three times from scratch, each into its own state dir:
with the in-process llama.cpp embedder, and through `python -m llama_cpp.server` (same
converted GGUF, on 127.0.0.1, 2 threads) with its defaults and with `--flash_attn true`.
Index throughput is tokens embedded / phase-2 seconds; search latency is p50/p95 of
distinct hybrid queries (each embedded once: the query cache is not what is measured).
One timed run each on a shared 2-core machine: runs move by +-20%.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from indexer.core.settings import Settings  # noqa: E402
from indexer.embed.llama import get_embedder  # noqa: E402
from indexer.workspace import Workspace  # noqa: E402
from tests.e2e.test_remote_embedder import LlamaServer, free_port  # noqa: E402

QUERIES = [
    "parse an email address", "decode a quoted-printable header", "encode base64 body",
    "serialize python object to json", "pretty print json with indentation", "split a MIME multipart",
    "set the content type charset", "escape a unicode string", "read headers from a file",
    "format a date for a message", "raise an error on invalid json", "fold long header lines",
    "iterate over message parts", "decode an RFC 2047 encoded word", "detect the default charset",
    "policy for line endings", "scan a json string token", "attach a file to an email",
    "get the payload of a message", "compare two header values", "strip whitespace from values",
    "build a message from bytes", "check if a message is multipart", "generator that flattens a message",
]


def default_corpus(dest: Path) -> Path:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for pkg in ("json", "email/mime", "email/headerregistry.py", "email/quoprimime.py", "email/base64mime.py"):
        src, out = stdlib / pkg, dest / pkg
        if src.is_dir():
            shutil.copytree(src, out, ignore=shutil.ignore_patterns("__pycache__", "test*"))
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, out)
    return dest


def run(corpus: Path, state: Path, settings: dict[str, object], label: str) -> dict[str, float]:
    ws = Workspace(corpus, Settings(state_dir=state, **settings))  # type: ignore[arg-type]
    try:
        _ = ws.embedder  # model/vocab load and the remote check are not index time
        summary = ws.index()
        lat = []
        for q in QUERIES:
            t = time.perf_counter()
            ws.search(q, limit=10)
            lat.append(time.perf_counter() - t)
        lat.sort()
        out = {
            "chunks": float(summary.chunks_embedded),
            "tokens": float(summary.tokens_embedded),
            "embed_s": summary.seconds["embed"],
            "total_s": summary.seconds["total"],
            "tok_s": summary.tokens_embedded / max(summary.seconds["embed"], 1e-9),
            "p50_ms": 1000 * statistics.median(lat),
            "p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))],
        }
        print(f"{label:<28} {out['chunks']:>6.0f} chunks {out['tokens']:>8.0f} tokens  "
              f"{out['tok_s']:>7.0f} tok/s  index {out['total_s']:5.1f} s  "
              f"search p50 {out['p50_ms']:6.1f} ms  p95 {out['p95_ms']:6.1f} ms", flush=True)
        return out
    finally:
        ws.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    try:
        corpus = args.corpus or default_corpus(tmp / "corpus")
        model = get_embedder(Settings()).path
        results = {"local (in-process)": run(corpus, tmp / "s-local", {}, "local (in-process)")}
        for label, extra in (("llama_cpp.server", ()), ("llama_cpp.server flash_attn", ("--flash_attn", "true"))):
            server = LlamaServer(model, free_port(), tmp, "--n_threads", "2", "--n_threads_batch", "2", *extra)
            server.start()
            try:
                results[label] = run(corpus, tmp / f"s-{len(results)}", {"embedder_url": server.url}, label)
            finally:
                server.stop()
        base = results["local (in-process)"]
        print("\nratios remote / local (throughput: <1 is slower; latency: >1 is slower)")
        for label, r in results.items():
            if r is base:
                continue
            print(f"{label:<28} tok/s {r['tok_s'] / base['tok_s']:.2f}x   "
                  f"search p50 {r['p50_ms'] / base['p50_ms']:.2f}x   p95 {r['p95_ms'] / base['p95_ms']:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
