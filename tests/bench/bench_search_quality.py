"""Search quality on CodeSearchNet-style sets, product vs a naive baseline, side by side.

    nice -n 10 .venv/bin/python tests/bench/bench_search_quality.py [--split tune|held|both]
        [--lang python,go,rust,ts[,java,csharp]] [--label NAME] [--cache DIR] [--precision P]
        [--answers functions|types]

Datasets come from `codesearch_data.py` (built at run time from installed packages,
Debian source packages and npm tarballs; nothing in the repository). For each
(language, split) the blanked copy of its projects is indexed as one workspace with the
real product (`indexer.Workspace`, real llama.cpp model, Chroma, SQLite) and every query
is run through `Workspace.search` in the three modes and through the real context packer
at 1k/2k/4k tokens. The baseline is the simplest dense index a user could build: 40-line
windows of every file, embedded by the same model up to its trained 256 word pieces,
cosine top-10. `--answers types` asks for classes, structs, enums, traits and interfaces
instead of functions, in the same workspaces (the same cached index).

A hit is correct when it names the answer's file and overlaps the answer's lines. Reported: MRR@10, R@1, R@10; the share of queries whose top hit is in a test/
example file; context coverage = the answer's first line is inside a packed snippet.
Indexes and window vectors are cached under --cache (default ~/.cache/forge-bench), so a
re-run only re-embeds what the chunker changed. Results go to <cache>/results-<label>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from codesearch_data import MAX_CHARS, Query, build, state_dir  # noqa: E402

from indexer.core.settings import Settings  # noqa: E402
from indexer.core.types import SearchHit, Snippet  # noqa: E402
from indexer.embed.llama import LlamaEmbedder, get_embedder  # noqa: E402
from indexer.embed.model import DEFAULT_MAX_TOKENS  # noqa: E402
from indexer.search import context as context_mod  # noqa: E402
from indexer.workspace import Workspace  # noqa: E402

K = 10
WINDOW = 40
BUDGETS = (1024, 2048, 4096)
MODES = ("vector", "lexical", "hybrid")
_TESTISH = re.compile(r"(^|/)(tests?|testing|__tests__|spec|examples?|benches)(/|$)|_test\.(go|py)$|"
                      r"(^|/)test_[^/]*\.py$|\.(test|spec)\.[jt]sx?$")
_CODE_EXT = (".py", ".go", ".rs", ".ts", ".js", ".java", ".cs")


def _rank(hits: Sequence[tuple[str, int, int]], q: Query, strict: bool = False) -> int | None:
    """Rank of the first correct hit in the top K. Overlap scorer: the answer's file and
    overlapping lines. Strict scorer: also covers at least half of the answer's lines and
    spans at most twice as many lines as the answer (the unit a user wants, not a
    class-wide span or a three-line fragment)."""
    size = q.end_line - q.start_line + 1
    for i, (path, s, e) in enumerate(hits[:K], start=1):
        if path != q.path or s > q.end_line or e < q.start_line:
            continue
        if strict and (min(e, q.end_line) - max(s, q.start_line) + 1 < size / 2 or e - s + 1 > 2 * size):
            continue
        return i
    return None


def _metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    n = max(1, len(ranks))
    return {
        "mrr": sum(1.0 / r for r in ranks if r) / n,
        "r1": sum(1 for r in ranks if r == 1) / n,
        "r10": sum(1 for r in ranks if r) / n,
    }


class Windows:
    """The naive baseline: 40-line windows, dense only; vectors cached by text hash."""

    def __init__(self, root: Path, embed_docs: Callable[[list[str]], np.ndarray], cache: Path) -> None:
        self.spans: list[tuple[str, int, int]] = []
        texts: list[str] = []
        for f in sorted(root.rglob("*")):
            if not f.is_file() or f.suffix not in _CODE_EXT:
                continue
            lines = f.read_text(encoding="utf-8").split("\n")
            for s in range(0, len(lines), WINDOW):
                text = "\n".join(lines[s : s + WINDOW])
                if text.strip():
                    self.spans.append((f.relative_to(root).as_posix(), s + 1, min(len(lines), s + WINDOW)))
                    texts.append(text)
        cache.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha1("\0".join(texts).encode()).hexdigest()[:16]
        path = cache / f"windows-{key}-t{DEFAULT_MAX_TOKENS}.npy"
        if path.exists():
            self.matrix = np.load(path)
        else:
            self.matrix = np.asarray(embed_docs(texts), dtype=np.float32)
            np.save(path, self.matrix)
        self.matrix /= np.linalg.norm(self.matrix, axis=1, keepdims=True) + 1e-9
        self.tokens = 0

    def search(self, qvec: np.ndarray) -> list[tuple[str, int, int]]:
        scores = self.matrix @ (qvec / (np.linalg.norm(qvec) + 1e-9))
        top = np.argsort(-scores)[:K]
        return [self.spans[i] for i in top]


def windows_embedder(product: object) -> LlamaEmbedder:
    """The baseline reads each window up to the model's trained input length (256 word
    pieces, what sentence-transformers would give a naive user), whatever the product's
    chunk size and model input. Until 2026-12 it read the product's maxTokens, but its
    vectors were cached by text alone, so machines that had run the 256-token first round
    kept reporting 256-token windows (held 0.531) while a fresh machine computed 128-token
    ones (held 0.503); the cache key now names the cap."""
    cap = DEFAULT_MAX_TOKENS
    return get_embedder(Settings(max_tokens=cap, embed_tokens=cap, model_precision=_precision(product)))


def _precision(embedder: object) -> str:
    spec = getattr(embedder, "spec", None)
    return str(getattr(spec, "precision", "f16"))


def _covered(snippets: Sequence[Snippet], q: Query) -> bool:
    return any(s.path == q.path and s.start_line <= q.start_line <= s.end_line for s in snippets)


def run_set(lang: str, split: str, root: Path, queries: list[Query], cache: Path, embedder: object,
            settings: Settings, max_chars: int = MAX_CHARS) -> dict:
    state = state_dir(cache, lang, split, embedder.max_tokens, embedder.input_tokens, _precision(embedder),  # type: ignore[attr-defined]
                      max_chars)
    settings = settings.model_copy(update={"state_dir": state})
    t = time.perf_counter()
    ws = Workspace(root, settings, embedder=embedder)  # type: ignore[arg-type]
    try:
        summary = ws.index()
        index_s = time.perf_counter() - t
        conn = ws.store.sql.conn
        n_chunks, n_tokens = conn.execute("SELECT COUNT(*), COALESCE(SUM(tokens),0) FROM chunks").fetchone()
        u_chunks, u_tokens = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(t),0) FROM (SELECT MAX(tokens) t FROM chunks GROUP BY text_hash)"
        ).fetchone()
        ranks: dict[str, list[int | None]] = {m: [] for m in (*MODES, "windows", "hybrid_strict", "windows_strict")}
        top_test = {m: 0 for m in MODES}
        first_scores: dict[str, list[float]] = {"right": [], "wrong": []}
        cover = {b: 0 for b in BUDGETS}
        win = Windows(root, windows_embedder(embedder).embed_documents, cache / "windows")
        t_q = time.perf_counter()
        for q in queries:
            memo: dict[int, list[SearchHit]] = {}
            for mode in MODES:
                hits = ws.search(q.query, limit=max(K, 40) if mode == "hybrid" else K, mode=mode)
                if mode == "hybrid":
                    memo[40] = hits
                spans = [(h.path, h.start_line, h.end_line) for h in hits]
                ranks[mode].append(_rank(spans, q))
                if mode == "hybrid":
                    ranks["hybrid_strict"].append(_rank(spans, q, strict=True))
                    if hits:  # how the first hit's score reads, right or wrong
                        first_scores["right" if _rank(spans[:1], q) else "wrong"].append(hits[0].score)
                if hits and _TESTISH.search(hits[0].path):
                    top_test[mode] += 1
            wspans = win.search(embedder.embed_query(q.query))  # type: ignore[attr-defined]
            ranks["windows"].append(_rank(wspans, q))
            ranks["windows_strict"].append(_rank(wspans, q, strict=True))

            def cached_search(text: str, n: int, _memo: dict[int, list[SearchHit]] = memo) -> list[SearchHit]:
                return _memo[40][:n] if n <= 40 else ws.search(text, limit=n)

            for b in BUDGETS:
                res = context_mod.build_context(ws.store, cached_search, embedder.count_tokens,  # type: ignore[attr-defined]
                                                query=q.query, path=None, line=None, budget=b)
                cover[b] += _covered(res.snippets, q)
        query_s = time.perf_counter() - t_q
    finally:
        ws.close()
    n = max(1, len(queries))
    return {
        "language": lang, "split": split, "queries": len(queries),
        "systems": {m: _metrics(r) for m, r in ranks.items()},
        "top_hit_in_tests": {m: v / n for m, v in top_test.items()},
        "context_coverage": {str(b): v / n for b, v in cover.items()},
        "first_hit_scores": first_scores,
        "chunks": n_chunks, "chunk_tokens": n_tokens, "unique_chunks": u_chunks, "unique_tokens": u_tokens,
        "index_seconds": round(index_s, 1), "embedded_now": summary.chunks_embedded,
        "tokens_embedded_now": summary.tokens_embedded, "query_seconds": round(query_s, 1),
        "windows": len(win.spans),
    }


def _table(results: list[dict]) -> str:
    head = ("| split | lang | n | vector MRR/R@1/R@10 | lexical | hybrid | windows | hybrid strict | windows strict "
            "| top hit in tests (hyb) | ctx 1k/2k/4k | chunks | tokens/chunk |")
    rows = [head, "|" + "---|" * 13]

    def cell(m: dict[str, float]) -> str:
        return f"{m['mrr']:.3f} / {m['r1']:.3f} / {m['r10']:.3f}"

    for r in results:
        s = r["systems"]
        ctx = " / ".join(f"{r['context_coverage'][str(b)]:.2f}" for b in BUDGETS)
        tpc = r["unique_tokens"] / max(1, r["unique_chunks"])
        rows.append(f"| {r['split']} | {r['language']} | {r['queries']} | {cell(s['vector'])} | {cell(s['lexical'])} "
                    f"| {cell(s['hybrid'])} | {cell(s['windows'])} | {cell(s['hybrid_strict'])} | {cell(s['windows_strict'])} "
                    f"| {r['top_hit_in_tests']['hybrid']:.2f} | {ctx} "
                    f"| {r['unique_chunks']} | {tpc:.0f} |")
    for split in sorted({r["split"] for r in results}):
        sub = [r for r in results if r["split"] == split]
        n = sum(r["queries"] for r in sub)
        avg = {m: {k: sum(r["systems"][m][k] * r["queries"] for r in sub) / n for k in ("mrr", "r1", "r10")}
               for m in (*MODES, "windows", "hybrid_strict", "windows_strict")}
        ctx = " / ".join(f"{sum(r['context_coverage'][str(b)] * r['queries'] for r in sub) / n:.2f}" for b in BUDGETS)
        tests = sum(r["top_hit_in_tests"]["hybrid"] * r["queries"] for r in sub) / n
        ch = sum(r["unique_chunks"] for r in sub)
        tok = sum(r["unique_tokens"] for r in sub)
        rows.append(f"| {split} | **all** | {n} | {cell(avg['vector'])} | {cell(avg['lexical'])} | "
                    f"{cell(avg['hybrid'])} | {cell(avg['windows'])} | {cell(avg['hybrid_strict'])} | "
                    f"{cell(avg['windows_strict'])} | {tests:.2f} | {ctx} | {ch} | "
                    f"{tok / max(1, ch):.0f} (total {tok}) |")
    for split in sorted({r["split"] for r in results}):
        right = sorted(x for r in results if r["split"] == split for x in r["first_hit_scores"]["right"])
        wrong = sorted(x for r in results if r["split"] == split for x in r["first_hit_scores"]["wrong"])
        rows.append(f"\n{split}: hybrid first hits scoring >= 0.5: right {_share(right):.2f} of {len(right)} "
                    f"(median {_median(right):.3f}), wrong {_share(wrong):.2f} of {len(wrong)} "
                    f"(median {_median(wrong):.3f})")
    return "\n".join(rows)


def _median(xs: Sequence[float]) -> float:
    return xs[len(xs) // 2] if xs else 0.0


def _share(xs: Sequence[float], floor: float = 0.5) -> float:
    return sum(1 for x in xs if x >= floor) / max(1, len(xs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="both", choices=["tune", "held", "both"])
    ap.add_argument("--lang", default="python,go,rust,ts", help="also: java, csharp (held only)")
    ap.add_argument("--label", default="run")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "forge-bench")
    ap.add_argument("--max-tokens", type=int, help="the maxTokens setting (default: the product's default)")
    ap.add_argument("--embed-tokens", type=int, help="the embedTokens setting (default: the product's default)")
    ap.add_argument("--answers", default="functions", choices=["functions", "types"],
                    help="what the queries ask for: functions and methods (default), or types "
                    "(classes, structs, enums, traits, interfaces) in the same workspaces")
    ap.add_argument("--max-chars", type=int, default=MAX_CHARS,
                    help=f"characters per project (default {MAX_CHARS}); larger is closer to whole repositories")
    ap.add_argument("--precision", default="auto", choices=["auto", "f16", "bf16", "f32"],
                    help="the modelPrecision setting (default: auto, the product's default)")
    args = ap.parse_args()
    sets = build(args.cache, args.lang.split(","), args.answers, args.max_chars)
    base = Settings(max_tokens=args.max_tokens, embed_tokens=args.embed_tokens, model_precision=args.precision)
    embedder = get_embedder(base)
    results = []
    t0 = time.perf_counter()
    for (lang, split), (root, queries) in sorted(sets.items(), key=lambda kv: (kv[0][1] != "tune", kv[0][0])):
        if lang not in args.lang.split(",") or args.split not in ("both", split):
            continue
        r = run_set(lang, split, root, queries, args.cache, embedder, base, args.max_chars)
        print(f"{split} {lang}: {r['queries']} queries, hybrid MRR {r['systems']['hybrid']['mrr']:.3f}, "
              f"index {r['index_seconds']} s (embedded {r['embedded_now']} chunks, {r['tokens_embedded_now']} "
              f"tokens), queries {r['query_seconds']} s", flush=True)
        results.append(r)
    print(f"\n{args.label}: {time.perf_counter() - t0:.0f} s in all\n")
    print(_table(results))
    (args.cache / f"results-{args.label}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
