"""LSP latency and memory, measured over a real stdio connection to `python -m server`.

    python tests/bench/bench_lsp.py                      # the two-root fixture
    python tests/bench/bench_lsp.py --synthetic 200x5 --synthetic 5000x10
                                                         # + generated workspaces (FILESxFUNCTIONS)

Prints, per workspace: time from `initialized` to the first useful answer (a
forge/search that returns hits, and one whose top hit is a semantic match) and to the
end of indexing; server RSS after indexing; workspace/symbol and forge/search latency
p50/p95; save-to-searchable latency p50/p95 (didSave of a file with a new function →
first forge/search that returns it; a save waits 50 ms before it is reindexed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.e2e.helpers import (  # noqa: E402
    accept_registrations,
    call,
    copy_workspace,
    init_params,
    save,
    search,
    wait_indexed,
)

SYMBOL_QUERIES = [
    "parse_config_file",
    "merge",
    "HaversineDistance",
    "LRUCache",
    "Get",
    "Put",
    "levensh",
    "tokenize",
    "calcCart",
    "ShoppingCart",
    "addItem",
    "formatRelativeTime",
    "TokenBucket",
    "take",
    "fetch",
    "NewLRU",
    "cart",
    "dist",
    "conf",
    "xyz",
]
SEARCH_QUERIES = [
    "read settings from a TOML configuration file",
    "great-circle distance between latitude and longitude",
    "how many edits turn one string into another",
    "retry a download with exponential backoff",
    "add sales tax to the price of everything in the basket",
    "evict the least recently used entry",
    "rate limit operations per second",
    "human friendly relative time like 3 minutes ago",
    "split text into lowercase words",
    "merge nested dictionaries of settings",
]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def fmt(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{name}: n={len(ms)} p50={pct(ms, 50):.1f} ms p95={pct(ms, 95):.1f} ms max={max(ms):.1f} ms"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthesize(root: Path, files: int, functions: int) -> None:
    rnd = random.Random(7)
    verbs = [
        "parse",
        "load",
        "save",
        "compute",
        "render",
        "validate",
        "merge",
        "split",
        "fetch",
        "encode",
    ]
    nouns = [
        "config",
        "user",
        "invoice",
        "token",
        "image",
        "route",
        "order",
        "cache",
        "report",
        "event",
    ]
    for i in range(files):
        d = root / f"pkg{i % 50}"
        d.mkdir(parents=True, exist_ok=True)
        body = []
        for j in range(functions):
            v, n = rnd.choice(verbs), rnd.choice(nouns)
            body.append(
                f"def {v}_{n}_{i}_{j}(data, options=None):\n"
                f'    """{v.capitalize()} the {n} record number {i}.{j} and return it."""\n'
                f"    result = dict(data)\n    result['{n}'] = {j}\n    return result\n"
            )
        (d / f"mod_{i}.py").write_text("\n\n".join(body))


async def measure(roots: tuple[str, ...], ws: Path, state: Path, rounds: int) -> None:
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", os.environ.get("FORGE_BENCH_SERVER", "server"), *([] if os.environ.get("FORGE_BENCH_SERVER") else ["--log-level", "WARNING"])],
        server_env={**os.environ, "PYTHONPATH": str(REPO), "FORGE_INDEXER_STATE_DIR": str(state)},
    )
    client = await config.start()
    assert isinstance(client, LanguageClient)
    accept_registrations(client)
    pid = client._server.pid  # type: ignore[union-attr]
    t0 = time.monotonic()
    await client.initialize_session(init_params(ws, roots=roots))
    first_hit = first_semantic = None
    probe = "return the parsed configuration record"
    while first_semantic is None:
        try:
            result = await call(client, "forge/search", {"query": probe, "limit": 3})
        except Exception:
            result = {"results": [], "coverage": {"semantic": 0.0}}
        if result["results"] and first_hit is None:
            first_hit = time.monotonic() - t0
        if result["results"] and result["coverage"].get("semantic", 0) > 0:
            first_semantic = time.monotonic() - t0
        await asyncio.sleep(0.05)
    print(f"first forge/search with hits {first_hit:.1f} s after initialize "
          f"(with some semantic coverage: {first_semantic:.1f} s)")
    status = await wait_indexed(client, roots=len(roots), timeout=7200)
    files = sum(r["files"] for r in status["roots"])
    chunks = sum(r["chunks"] for r in status["roots"])
    print(
        f"indexed {files} files / {chunks} chunks in {time.monotonic() - t0:.1f} s (incl. start-up, model load)"
    )
    print(f"server RSS after indexing: {rss_mb(pid):.0f} MB")

    sym: list[float] = []
    for _ in range(10):
        for q in SYMBOL_QUERIES:
            t = time.perf_counter()
            await client.workspace_symbol_async(types.WorkspaceSymbolParams(query=q))
            sym.append(time.perf_counter() - t)
    print(fmt("workspace/symbol", sym))

    # New queries (each embedded once per server) and repeated ones (query vector cached).
    fresh: list[float] = []
    again: list[float] = []
    for round_ in range(5):
        for q in SEARCH_QUERIES:
            query = f"{q} {round_}" if round_ < 3 else q
            t = time.perf_counter()
            await call(client, "forge/search", {"query": query})
            (fresh if round_ < 4 else again).append(time.perf_counter() - t)
    print(fmt("forge/search, new queries", fresh))
    print(fmt("forge/search, repeated queries", again))

    target = ws / roots[0] / "bench_saves.py"
    lat: list[float] = []
    for i in range(rounds):
        name = f"bench_marker_function_{i}_{random.randrange(1 << 30)}"
        with target.open("a") as fh:
            fh.write(f"\n\ndef {name}(x):\n    return x * {i}\n")
        t = time.perf_counter()
        save(client, target)
        # Tiny neighbours share a chunk, so look for the name in the hits' code, not only
        # in their symbol.
        while not any(
            name == r["symbol"] or name in (r.get("preview") or "")
            for r in await search(client, name, limit=3)
        ):
            if time.perf_counter() - t > 30:
                raise SystemExit(f"{name} not searchable after 30 s")
            await asyncio.sleep(0.01)
        lat.append(time.perf_counter() - t)
        await asyncio.sleep(0.4)  # let the watcher's echo of the same write settle
    print(fmt("save -> searchable (didSave, 50 ms save delay)", lat))
    print(f"server RSS at the end: {rss_mb(pid):.0f} MB")
    await client.shutdown_session()
    await client.stop()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=20, help="save-to-searchable rounds")
    ap.add_argument("--synthetic", action="append", default=[], metavar="FILESxFUNCTIONS",
                    help="also measure a generated workspace, e.g. 5000x10 (repeatable)")
    ap.add_argument("--skip-fixture", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="forge-bench-") as tmp:
        base = Path(tmp)
        if not args.skip_fixture:
            ws = copy_workspace(base)
            print("== two-root fixture (fixtures/lsp_ws)")
            asyncio.run(measure(("root_a", "root_b"), ws, base / "state", args.rounds))
        for spec in args.synthetic:
            files, functions = (int(x) for x in spec.lower().split("x"))
            syn = base / f"syn-{spec}"
            synthesize(syn / "big", files, functions)
            print(f"== synthetic: {files} files x {functions} functions")
            asyncio.run(measure(("big",), syn, base / f"state-{spec}", args.rounds))


if __name__ == "__main__":
    main()
