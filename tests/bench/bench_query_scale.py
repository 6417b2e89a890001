"""Search latency and memory at 100k chunks, warm, in-process.

    nice -n 10 .venv/bin/python tests/bench/bench_query_scale.py [--chunks 100000] [--cache DIR]

Builds (once, cached under <cache>/scale-<chunks>-v<chunker version>) a workspace of about `--chunks` chunks
by copying the development benchmark's blanked sources (see codesearch_data.py) into as
many numbered copies as needed, and indexes it with the real pipeline (real chunker,
tokenizer, SQLite/FTS5, Chroma) — except that document vectors are NOT computed by the
model: embedding 100k chunks for real would take about half an hour on 2 cores. Each
chunk gets a synthetic vector instead: a real embedding of one of a thousand real
chunks of that corpus plus Gaussian noise, normalised, so vectors cluster like real ones
rather than spreading uniformly. Queries are embedded by the real model.

Then a fresh process opens the workspace, warms up with 20 queries and times 200 more
(the benchmark's natural-language queries): unfiltered, with a language filter and with
a path glob. Query vectors are computed by the real model before the timed loop and
served from memory (see MemoQueries: under load llama.cpp's query embedding time says
more about the other processes than about search); the embedding is timed separately. It reports p50/p95 latency and the process's resident memory (VmRSS and
peak VmHWM), which includes the model, Chroma's HNSW index and SQLite's cache.
Targets (issue 7): p95 < 50 ms, RSS < 500 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from codesearch_data import build  # noqa: E402

from indexer.chunking import CHUNKER_VERSION  # noqa: E402
from indexer.core.settings import Settings  # noqa: E402
from indexer.embed.llama import get_embedder  # noqa: E402
from indexer.workspace import Workspace  # noqa: E402

SEED_VECTORS = 1000


class SyntheticDocs:
    """The real embedder for queries and token counts; synthetic vectors for documents."""

    def __init__(self, real: Any, seeds: np.ndarray) -> None:
        self.real = real
        self.seeds = seeds
        self.made = 0

    def __getattr__(self, name: str) -> Any:  # dim, max_tokens, model_id, count_tokens, embed_query...
        return getattr(self.real, name)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.seeds.shape[1]), dtype=np.float32)
        for i, t in enumerate(texts):
            h = int.from_bytes(hashlib.sha1(t.encode("utf-8", "replace")).digest()[:8], "little")
            # The model is not given the path, so the numbered copies of a file send the same
            # texts; their noise differs (by the running count) so that the index holds 100k
            # distinct vectors, as a real repository would, not 19 exact copies of each.
            self.made += 1
            rng = np.random.default_rng([h, self.made])
            v = self.seeds[h % len(self.seeds)] + rng.normal(0, 0.25 / np.sqrt(out.shape[1]) * 4, out.shape[1])
            out[i] = v / np.linalg.norm(v)
        return out


def _sources(cache: Path) -> list[Path]:
    return [root for root, _ in build(cache).values()]


def build_workspace(cache: Path, target: int) -> Path:
    base = cache / f"scale-{target}-v{CHUNKER_VERSION}"  # a new chunker needs a new index
    root, state, done = base / "ws", base / "state", base / "built.json"
    if done.exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    root.mkdir(parents=True)
    sources = _sources(cache)
    real = get_embedder(Settings())
    # Real vectors for a sample of real chunks: the centres synthetic vectors scatter around.
    sample: list[str] = []
    for src in sources:
        for f in sorted(src.rglob("*"))[:400]:
            if f.is_file():
                lines = f.read_text(encoding="utf-8").split("\n")
                sample += ["\n".join(lines[i : i + 30]) for i in range(0, len(lines), 30)]
    sample = [s for s in sample if s.strip()][:SEED_VECTORS]
    t = time.perf_counter()
    seeds = np.asarray(real.embed_documents(sample), dtype=np.float32)
    print(f"{len(seeds)} seed vectors in {time.perf_counter() - t:.0f} s", flush=True)
    emb = SyntheticDocs(real, seeds)
    copies, chunks, summary_total = 0, 0, 0.0
    ws = Workspace(root, Settings(state_dir=state), embedder=emb)
    try:
        while chunks < target:
            dest = root / f"copy{copies:03d}"
            for src in sources:
                shutil.copytree(src, dest / src.name)
            copies += 1
            t = time.perf_counter()
            ws.index()
            summary_total += time.perf_counter() - t
            (chunks,) = ws.store.sql.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()
            print(f"copy {copies}: {chunks} chunks, {summary_total:.0f} s indexing so far", flush=True)
    finally:
        ws.close()
    done.write_text(json.dumps({"chunks": chunks, "copies": copies, "index_seconds": round(summary_total, 1)}))
    return base


def _rss() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


class MemoQueries:
    """The real embedder, with query vectors computed once up front.

    On a shared 2-core machine llama.cpp's two threads stall whenever another process
    holds a core, so one query embedding takes 5-15 ms idle but 0.5-2 s under load. The
    search path is therefore timed with the query vectors precomputed by the real model,
    and the query embedding is timed on its own.
    """

    def __init__(self, real: Any, queries: Sequence[str]) -> None:
        self.real = real
        self.vectors = {q: real.embed_query(q) for q in queries}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def embed_query(self, text: str) -> np.ndarray:
        hit = self.vectors.get(text)
        return hit if hit is not None else self.real.embed_query(text)


def _percentiles(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
            "max_ms": round(times[-1], 1)}


def measure(base: Path, cache: Path) -> dict[str, Any]:
    """Runs in a fresh process: open, warm up, time queries, read RSS."""
    from indexer.chunking.lexical import embed_text

    queries = [q.query for _, qs in build(cache).values() for q in qs][:220]
    rss_start = _rss()
    real = get_embedder(Settings())
    t = time.perf_counter()
    emb = MemoQueries(real, [embed_text(q) for q in queries])
    embed_ms = (time.perf_counter() - t) * 1000 / len(queries)
    ws = Workspace(base / "ws", Settings(state_dir=base / "state"), embedder=emb)
    try:
        (chunks,) = ws.store.sql.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()
        for q in queries[:20]:
            ws.search(q, limit=10)
        timed = queries[20:]
        results: dict[str, Any] = {"chunks": chunks, "queries": len(timed),
                                   "query_embedding_mean_ms": round(embed_ms, 1)}
        variants: dict[str, dict[str, Any]] = {
            "unfiltered": {}, "languages=[go]": {"languages": ["go"]}, "paths=[copy001/**]": {"paths": ["copy001/**"]},
        }
        for label, kwargs in variants.items():
            times = []
            for q in timed:
                t = time.perf_counter()
                ws.search(q, limit=10, **kwargs)
                times.append((time.perf_counter() - t) * 1000)
            results[label] = _percentiles(times)
        times = []
        for q in timed[:40]:
            t = time.perf_counter()
            real.embed_query(q + " ")  # not memoised
            times.append((time.perf_counter() - t) * 1000)
        results["query_embedding_alone"] = _percentiles(times)
    finally:
        ws.close()
    results["rss_mb_at_start"] = round(rss_start["VmRSS"], 0)
    results.update({k + "_mb": round(v, 0) for k, v in _rss().items()})
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "forge-bench")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.cache)))
        return
    base = build_workspace(args.cache, args.chunks)
    print("built:", (base / "built.json").read_text())
    out = subprocess.run([sys.executable, __file__, "--cache", str(args.cache), "--measure", str(base)],
                         check=True, capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
