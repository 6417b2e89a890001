"""Fit the relevance model of `indexer.search.ranking` on the tune split (never on held).

    nice -n 10 .venv/bin/python tests/bench/fit_ranking.py [--cache DIR] [--refresh] [--max-chars N]

Runs the product's own candidate generation (`indexer.search.query.candidates`) for every tune
query on the workspaces `bench_search_quality.py` indexed, labels a candidate 1 when it
overlaps the answer, keeps what the model reads of each candidate, then computes
`ranking.features` and:

1. fits the ranking weights listwise (softmax over each query's pool, the answer as the
   target: this is what MRR rewards);
2. calibrates that linear score into a probability with a pointwise logistic fit (Platt
   scaling), so the final coefficients are both well ordered and calibrated;
3. fits the one-feature calibrations for vector-only and lexical-only modes.

Prints tune MRR@10 with the current and the fitted coefficients, and the coefficients to
paste into indexer/search/ranking.py. Candidate pools are cached (features are computed
afresh every run), so only a change to candidate generation needs `--refresh`.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from codesearch_data import MAX_CHARS, build, scale_tag, state_dir  # noqa: E402

from indexer.chunking.lexical import query_words  # noqa: E402
from indexer.core.settings import Settings  # noqa: E402
from indexer.embed.llama import get_embedder  # noqa: E402
from indexer.search import query as query_mod  # noqa: E402
from indexer.search import ranking  # noqa: E402
from indexer.workspace import Workspace  # noqa: E402

Pool = tuple[np.ndarray, np.ndarray]  # features (n, F), labels (n,)


@dataclass(frozen=True, slots=True)
class Seen:
    """What the ranking model reads of one candidate (`ranking.Scored`) and its text (for a
    feature yet to be written), kept so that a change to `ranking.features` is refitted
    without running candidate generation again."""

    path: str
    symbol: str | None
    language: str
    kind: str | None
    cosine: float
    bm25: float
    body: str
    within: str = ""
    score: float = 0.0


RawPool = tuple[str, list[Seen], np.ndarray]  # query, candidates, labels


def collect(cache: Path, refresh: bool, max_chars: int = MAX_CHARS) -> list[RawPool]:
    out_file = cache / f"fit-raw{scale_tag(max_chars)}.pkl"
    if out_file.exists() and not refresh:
        return pickle.loads(out_file.read_bytes())
    sets = build(cache, max_chars=max_chars)
    embedder = get_embedder(Settings())
    pools: list[RawPool] = []
    for (lang, split), (root, queries) in sorted(sets.items()):
        if split != "tune":
            continue
        state = state_dir(cache, lang, split, embedder.max_tokens, embedder.input_tokens,
                          embedder.spec.precision, max_chars)
        ws = Workspace(root, Settings(state_dir=state), embedder=embedder)
        try:
            ws.index()
            for q in queries:
                pool = query_mod.candidates(ws.store, embedder, q.query)
                seen = [Seen(c.path, c.symbol, c.language, c.kind, c.cosine, c.bm25, c.body, c.within) for c in pool]
                y = np.array([float(c.path == q.path and c.start_line <= q.end_line and c.end_line >= q.start_line)
                              for c in pool])
                pools.append((q.query, seen, y))
        finally:
            ws.close()
        print(f"{lang}: {sum(1 for _ in queries)} queries", flush=True)
    out_file.write_bytes(pickle.dumps(pools))
    return pools


def featurize(raw: list[RawPool]) -> list[Pool]:
    """`ranking.features` of every candidate, as the product computes them now."""
    pools: list[Pool] = []
    for text, seen, y in raw:
        qwords = set(ranking._stem_all(query_words(text)))
        wanted = ranking.wanted_roles(text)
        thing = ranking.describes_thing(text)
        quoted = ranking.quoted_identifiers(text)
        lead = ranking.lead_word(text)
        x = np.array([ranking.features(c, qwords, wanted, thing, quoted, lead) for c in seen], dtype=np.float64)
        pools.append((x.reshape(len(seen), len(ranking.FEATURES)), y))
    return pools


def mrr(pools: list[Pool], w: np.ndarray) -> float:
    total = 0.0
    for x, y in pools:
        if not len(y):
            continue
        order = np.argsort(-(x @ w), kind="stable")[:10]
        hits = np.nonzero(y[order])[0]
        total += 1.0 / (hits[0] + 1) if len(hits) else 0.0
    return total / len(pools)


def shipped_weights() -> np.ndarray:
    """ranking.HYBRID's feature weights, one per FEATURES entry: a feature added since the
    last fit starts at 0."""
    w = np.zeros(len(ranking.FEATURES))
    w[: len(ranking.HYBRID) - 1] = ranking.HYBRID[1:]
    return w


def fit_listwise(pools: list[Pool], steps: int = 400, l2: float = 1e-3) -> np.ndarray:
    usable = [(x, y) for x, y in pools if y.any()]
    w = shipped_weights()
    lr = 0.5
    for _ in range(steps):
        grad = l2 * w
        for x, y in usable:
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            target = y / y.sum()
            grad += x.T @ (p - target) / len(usable)
        w -= lr * grad
    return w


def logistic(x: np.ndarray, y: np.ndarray, steps: int = 60) -> np.ndarray:
    """Weights (last one the intercept) of a logistic fit of y on the columns of x, by
    damped Newton steps."""
    x = np.column_stack([x, np.ones(len(x))])
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -50, 50)))
        grad = x.T @ (p - y)
        hess = (x * (p * (1 - p))[:, None]).T @ x + 1e-6 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        step *= min(1.0, 1.0 / (float(np.abs(step).max()) or 1.0))
        w -= step
    return w


def platt(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Logistic fit of y on a*z + b: (a, b)."""
    a, b = logistic(z[:, None], y)
    return float(a), float(b)


def fit_display(pools: list[Pool], coef: list[float]) -> tuple[float, float, float]:
    """The displayed score's calibration over (z, margin); prints how right and wrong
    first hits score with the relevance alone and with the display fit."""
    zs = [x @ np.array(coef[1:]) + coef[0] for x, _ in pools]
    ms = [np.array(ranking.margins(list(z))) for z in zs]
    y = np.concatenate([y for _, y in pools])
    w = logistic(np.column_stack([np.concatenate(zs), np.concatenate(ms)]), y)
    display = (float(w[2]), float(w[0]), float(w[1]))
    for name, d in (("relevance alone", (0.0, 1.0, 0.0)), ("display fit", display)):
        right, wrong = [], []
        for z, m, (_, yy) in zip(zs, ms, pools, strict=True):
            if not len(z):
                continue
            top = int(np.argmax(z))
            s = 1 / (1 + np.exp(-(d[0] + d[1] * z[top] + d[2] * m[top])))
            (right if yy[top] else wrong).append(s)
        print(f"  first hits, {name}: right n={len(right)} median {np.median(right):.3f} "
              f"(share >= 0.5: {np.mean(np.array(right) >= 0.5):.2f}); wrong n={len(wrong)} median "
              f"{np.median(wrong):.3f} (share >= 0.5: {np.mean(np.array(wrong) >= 0.5):.2f})")
    p = 1 / (1 + np.exp(-(display[0] + display[1] * np.concatenate(zs) + display[2] * np.concatenate(ms))))
    for lo, hi in ((0, 0.05), (0.05, 0.2), (0.2, 0.5), (0.5, 0.8), (0.8, 1.01)):
        sel = (p >= lo) & (p < hi)
        if sel.any():
            print(f"  shown {lo:.2f}-{hi:.2f}: n={int(sel.sum()):6} predicted {p[sel].mean():.3f} "
                  f"observed {y[sel].mean():.3f}")
    return display


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "forge-bench")
    ap.add_argument("--refresh", action="store_true")
    ap.add_argument("--max-chars", type=int, default=MAX_CHARS,
                    help="characters per project, as in bench_search_quality.py (larger: closer to whole "
                    "repositories); reuses bench_search_quality.py's index at this size, or builds it")
    args = ap.parse_args()
    pools = featurize(collect(args.cache, args.refresh, args.max_chars))
    current = shipped_weights()
    print(f"pools: {len(pools)} queries, answer in pool for {sum(1 for _, y in pools if y.any())}")
    print(f"tune MRR@10, current coefficients: {mrr(pools, current):.4f}")
    for i, name in enumerate(ranking.FEATURES):
        w = current.copy()
        w[i] = 0.0
        print(f"  without {name:8}: {mrr(pools, w):.4f}")
    w = fit_listwise(pools)
    print(f"tune MRR@10, listwise fit: {mrr(pools, w):.4f}")
    x = np.vstack([x for x, _ in pools])
    y = np.concatenate([y for _, y in pools])
    a, b = platt(x @ w, y)
    coef = [b, *(a * w)]
    print("HYBRID =", tuple(round(float(c), 3) for c in coef))
    av, bv = platt(x[:, 0], y)
    print("VECTOR =", (round(bv, 3), round(av, 3)))
    al, bl = platt(x[:, 1], y)
    print("LEXICAL =", (round(bl, 3), round(al, 3)))
    print("DISPLAY (for the current HYBRID) =", tuple(round(v, 3) for v in fit_display(pools, list(ranking.HYBRID))))
    # Calibration check: mean predicted vs observed rate in score bins.
    p = 1 / (1 + np.exp(-(x @ np.array(coef[1:]) + coef[0])))
    for lo, hi in ((0, 0.1), (0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 1.01)):
        m = (p >= lo) & (p < hi)
        if m.any():
            print(f"  score {lo:.1f}-{hi:.1f}: n={int(m.sum()):6} predicted {p[m].mean():.3f} observed {y[m].mean():.3f}")


if __name__ == "__main__":
    main()
