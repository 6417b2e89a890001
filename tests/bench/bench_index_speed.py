"""Indexing speed of the whole pipeline against a naive index, side by side in one run.

    nice -n 10 .venv/bin/python tests/bench/bench_index_speed.py [--cache DIR] [--runs N]

The corpus: the eight blanked workspaces of `bench_search_quality.py` copied into one
folder (about 470 files, 1.5 MB of Python, Go, Rust and TypeScript/JS; built at run time,
nothing in the repository). Each system indexes it from scratch in a fresh child process,
timed from the child's start (imports and model load included), the two alternating:

- **forge-indexer**: `Workspace.index()` with default settings, what `forge-indexer index`
  runs. Reports the whole run, when the first lexical search answered (asked from the
  progress callback as soon as the first files are stored), when every file was stored
  (semantic coverage starts filling in then), the embedder's own seconds, the tokens given
  to the model and tokens per chunk.
- **naive windows**: 40-line windows of every code file embedded by the same llama.cpp
  embedder (same model, threads and batching) at the model's trained input length of
  256 tokens, with nothing stored: the least a semantic index has to do.

The machine is shared and moves by +-20%: compare the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

START = time.perf_counter()

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

WINDOW = 40
CODE_EXT = {".py", ".go", ".rs", ".ts", ".tsx", ".js", ".mjs", ".cjs"}


def build_corpus(cache: Path, dest: Path) -> Path:
    """All benchmark workspaces, one folder each, under `dest`."""
    from codesearch_data import build

    for (lang, split), (root, _) in sorted(build(cache).items()):
        shutil.copytree(root, dest / f"{lang}-{split}")
    return dest


def child_ours(corpus: Path) -> dict[str, Any]:
    from indexer.settings import Settings
    from indexer.types import Progress
    from indexer.workspace import Workspace

    marks: dict[str, Any] = {}
    state = Path(tempfile.mkdtemp(prefix="bench-index-state-"))
    try:
        with Workspace(corpus, Settings(state_dir=state)) as ws:

            def tick(p: Progress) -> None:
                if p.chunks_done and "first_lexical_s" not in marks:
                    hits = ws.search("parse a version string", limit=3, mode="lexical")
                    marks["first_lexical_s"] = time.perf_counter() - START
                    marks["first_lexical_hits"] = len(hits)
                if p.phase == "embed" and "files_stored_s" not in marks:
                    marks["files_stored_s"] = time.perf_counter() - START

            summary = ws.index(on_progress=tick)
            chunks = ws.status()["chunks"]
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return {
        **marks, "total_s": time.perf_counter() - START, "embed_s": summary.seconds["embed"],
        "tokens": summary.tokens_embedded, "chunks": chunks, "texts": summary.chunks_embedded,
    }


def child_windows(corpus: Path) -> dict[str, Any]:
    from indexer.embed import get_embedder
    from indexer.settings import Settings

    emb = get_embedder(Settings(max_tokens=256))
    texts = []
    for f in sorted(corpus.rglob("*")):
        if f.is_file() and f.suffix in CODE_EXT:
            lines = f.read_text(encoding="utf-8", errors="replace").split("\n")
            texts += ["\n".join(lines[s : s + WINDOW]) for s in range(0, len(lines), WINDOW)]
    texts = [t for t in texts if t.strip()]
    t = time.perf_counter()
    emb.embed_documents(texts)
    embed_s = time.perf_counter() - t
    tokens = sum(min(emb.count_tokens(x), emb.max_tokens) for x in texts)
    return {"total_s": time.perf_counter() - START, "embed_s": embed_s, "tokens": tokens,
            "chunks": len(texts), "texts": len(texts)}


def run_child(kind: str, corpus: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(corpus)],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "forge-bench")
    ap.add_argument("--runs", type=int, default=1, help="alternating runs of each system")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "CORPUS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, corpus = args.child
        result = (child_ours if kind == "ours" else child_windows)(Path(corpus))
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        corpus = build_corpus(args.cache, Path(tmp) / "corpus")
        files = [f for f in corpus.rglob("*") if f.is_file()]
        size = sum(f.stat().st_size for f in files)
        print(f"corpus: {len(files)} files, {size / 1e6:.2f} MB")
        results: dict[str, list[dict[str, Any]]] = {"ours": [], "windows": []}
        for _ in range(args.runs):
            for kind in results:
                results[kind].append(run_child(kind, corpus))
                print(f"  {kind}: {json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in results[kind][-1].items()})}")
    best = {k: min(v, key=lambda r: r["total_s"]) for k, v in results.items()}
    ours, win = best["ours"], best["windows"]
    print("\n| | forge-indexer | naive 40-line windows |\n|---|---|---|")
    print(f"| chunks embedded | {ours['texts']:,} | {win['texts']:,} |")
    print(f"| tokens given to the model | {ours['tokens'] / 1000:.0f}k | {win['tokens'] / 1000:.0f}k |")
    print(f"| tokens per chunk | {ours['tokens'] / max(1, ours['texts']):.0f} | {win['tokens'] / max(1, win['texts']):.0f} |")
    print(f"| embedding | {ours['embed_s']:.1f} s ({ours['tokens'] / ours['embed_s'] / 1000:.1f}k tokens/s) | "
          f"{win['embed_s']:.1f} s ({win['tokens'] / win['embed_s'] / 1000:.1f}k tokens/s) |")
    print(f"| whole run, from process start | {ours['total_s']:.1f} s | {win['total_s']:.1f} s |")
    print(f"| first lexical answer | {ours.get('first_lexical_s', float('nan')):.1f} s | none |")
    print(f"| every file stored | {ours.get('files_stored_s', float('nan')):.1f} s | |")
    print(f"\nwhole run: windows / ours = {win['total_s'] / ours['total_s']:.2f}x")


if __name__ == "__main__":
    main()
