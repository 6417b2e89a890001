"""Embedded Chroma vs a Chroma server, and the team index's possession filter, side by side.

Not part of the default test run. Synthetic 384-d unit vectors (the default model's size)
stand in for embeddings, so only the store is measured (the embedder has its own bench):

    .venv/bin/python tests/bench/bench_chroma_server.py [--files 2000] [--chunks-per-file 5]

Prints upsert throughput and query p50/p95 for: the embedded store; a private collection
on the server; a team collection holding two branches' versions (10% of the files differ),
queried without and with the possession filter (the asking machine's file hashes in `$in`).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from indexer.store.index import VectorStore
from indexer.store.remote import RemoteSpec, RemoteVectorStore, collection_name
from tests.e2e.chroma_helpers import ChromaServer

DIM = 384


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, p))


def timed_queries(fn, queries: np.ndarray) -> list[float]:  # type: ignore[no-untyped-def]
    fn(queries[0])  # warm up
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--chunks-per-file", type=int, default=5)
    ap.add_argument("--queries", type=int, default=100)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    files = [f"pkg{i // 100}/mod{i}.py" for i in range(args.files)]
    hashes_a = {p: hashlib.sha256(f"a{p}".encode()).hexdigest() for p in files}
    changed = set(files[:: 10])  # branch B changed 10% of the files
    hashes_b = {p: (hashlib.sha256(f"b{p}".encode()).hexdigest() if p in changed else h) for p, h in hashes_a.items()}
    k = args.chunks_per_file

    def entries(hashes: dict[str, str], only: set[str] | None = None) -> tuple[list[str], list[dict[str, str]]]:
        ids, metas = [], []
        for p, h in hashes.items():
            if only is not None and p not in only:
                continue
            for j in range(k):
                ids.append(hashlib.sha1(f"{p}{j}{h}".encode()).hexdigest()[:24])
                metas.append({"path": p, "language": "python", "file_hash": h, "text_hash": f"{p}{j}"})
        return ids, metas

    ids_a, metas_a = entries(hashes_a)
    ids_b, metas_b = entries(hashes_b, changed)
    vec_a, vec_b = unit(rng, len(ids_a)), unit(rng, len(ids_b))
    queries = unit(rng, args.queries)
    rows: list[tuple[str, float, float, float]] = []

    with tempfile.TemporaryDirectory() as tmp:
        local = VectorStore(Path(tmp) / "chroma", DIM)
        t = time.perf_counter()
        local.upsert(ids_a, list(vec_a), [{"path": m["path"], "language": "python"} for m in metas_a])
        up_local = len(ids_a) / (time.perf_counter() - t)
        lat = timed_queries(lambda q: local.query(q, 60), queries)
        rows.append(("embedded store", up_local, pct(lat, 50), pct(lat, 95)))
        local.close()

        server = ChromaServer(Path(tmp) / "server").start()
        try:
            private = RemoteVectorStore(RemoteSpec(server.url, collection_name("bench", workspace="w")), DIM).open()
            t = time.perf_counter()
            private.upsert(ids_a, list(vec_a), [{"path": m["path"], "language": "python"} for m in metas_a])
            up_private = len(ids_a) / (time.perf_counter() - t)
            lat = timed_queries(lambda q: private.query(q, 60), queries)
            rows.append(("server, private collection", up_private, pct(lat, 50), pct(lat, 95)))

            team = RemoteVectorStore(RemoteSpec(server.url, collection_name("bench", team="t"), team=True), DIM).open()
            t = time.perf_counter()
            team.upsert(ids_a, list(vec_a), metas_a)
            team.upsert(ids_b, list(vec_b), metas_b)
            up_team = (len(ids_a) + len(ids_b)) / (time.perf_counter() - t)
            lat = timed_queries(lambda q: team.query(q, 60), queries)
            rows.append(("server, team, no filter", up_team, pct(lat, 50), pct(lat, 95)))
            lat = timed_queries(lambda q: team.query(q, 60, held=hashes_a), queries)
            rows.append((f"server, team, possession filter ({len(set(hashes_a.values()))} hashes)",
                         up_team, pct(lat, 50), pct(lat, 95)))
            got = team.query(queries[0], 60, held=hashes_a)
            assert got and all(cid in set(ids_a) for cid, _ in got)
        finally:
            server.stop()

    print(f"{args.files} files x {k} chunks = {len(ids_a)} vectors (+{len(ids_b)} of the other branch in the team "
          f"collection), {DIM}-d, {args.queries} queries of 60 results")
    print(f"{'store':58} {'upserts/s':>10} {'p50 ms':>8} {'p95 ms':>8}")
    for name, up, p50, p95 in rows:
        print(f"{name:58} {up:10.0f} {p50:8.1f} {p95:8.1f}")
    base = rows[2][2]
    print(f"possession filter overhead: p50 x{rows[3][2] / base:.2f}, p95 x{rows[3][3] / rows[2][3]:.2f}")


if __name__ == "__main__":
    main()
