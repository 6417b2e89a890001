"""The shared daemon, measured: CLI latency with and without it, proof cost, a search flood, RSS.

Run it inside a D-Bus session with an unlocked keyring (the daemon needs one):

    dbus-run-session -- bash tests/keyring.sh python tests/bench/bench_daemon.py --files 2000

Side by side on the same index: `forge-indexer search` as a fresh process with no daemon
(opens the index and loads the model itself) and with the daemon running (a client).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from indexer.core.settings import load_settings  # noqa: E402
from server.auth import secret as keyring_secret  # noqa: E402
from server.auth.proof import ReplayCache, make_proof, verify  # noqa: E402
from server.daemon.client import DaemonClient, find_daemon, handshake, open_connection  # noqa: E402
from server.daemon.framing import frame, read_message  # noqa: E402
from server.daemon.paths import paths_for  # noqa: E402

QUERIES = ["parse a duration", "load the config file", "http request handler", "sort items by key",
           "compute a checksum", "retry with backoff", "render a template", "scale a value"]


def synth(ws: Path, files: int) -> None:
    shutil.copytree(REPO / "fixtures/polyglot", ws)
    gen = ws / "gen"
    gen.mkdir()
    for i in range(files):
        (gen / f"mod_{i}.py").write_text("".join(
            f"def helper_{i}_{j}(value, factor={j}):\n    \"\"\"Scale value by {j} and shift it by {i}.\"\"\"\n"
            f"    total = value * factor\n    return total + {i}\n\n" for j in range(5)))


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else values[0] * 1000


def run_cli(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "server.cli", *args], check=True, capture_output=True)
    return time.perf_counter() - started


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def flood(endpoint, secret: bytes, ws: Path, conns: int, per: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0

    async def one(n: int) -> None:
        nonlocal errors
        reader, writer = await open_connection(endpoint)
        key = await handshake(reader, writer, secret)

        def send(msg_id: int, method: str, params: object) -> float:
            body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode()
            writer.write(frame(body, {"Forge-Proof": make_proof(key, method, body)}))
            return time.perf_counter()

        send(0, "initialize", {"rootUri": ws.as_uri(), "capabilities": {}})
        sent = {i: send(i, "forge/search", {"query": QUERIES[(n + i) % len(QUERIES)], "limit": 5})
                for i in range(1, per + 1)}
        await writer.drain()
        left = set(sent)
        while left:
            got = await read_message(reader)
            assert got is not None
            msg = json.loads(got[1])
            if msg.get("id") in left:
                left.discard(msg["id"])
                latencies.append(time.perf_counter() - sent[msg["id"]])
                errors += "error" in msg
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(conns)))
    return time.perf_counter() - started, latencies, errors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000, help="synthetic files of 5 functions each")
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="fbd-", dir="/tmp"))
    os.environ["FORGE_INDEXER_STATE_DIR"] = str(base / "state")
    os.environ.setdefault("XDG_RUNTIME_DIR", str(base))
    os.environ["PYTHONPATH"] = str(REPO)
    ws = base / "ws"
    synth(ws, args.files)
    settings, _ = load_settings(ws)
    paths = paths_for(ws, settings)
    t0 = time.perf_counter()
    run_cli(["index", str(ws)])
    print(f"index in-process: {time.perf_counter() - t0:.1f} s")
    st = json.loads(subprocess.run([sys.executable, "-m", "server.cli", "status", "-w", str(ws), "--json"],
                                   check=True, capture_output=True, text=True).stdout)
    print(f"index: {st['files']} files, {st['chunks']} chunks, {st['vectors']} vectors")

    no_daemon = [run_cli(["search", QUERIES[i % len(QUERIES)], "-w", str(ws)]) for i in range(args.rounds)]

    proc = subprocess.Popen([sys.executable, "-m", "server.daemon", "-w", str(ws), "--background",
                             "--idle-timeout", "0"])
    try:
        while find_daemon(paths) is None:
            assert proc.poll() is None, "the daemon failed to start"
            time.sleep(0.05)
        time.sleep(3)
        idle_rss = rss_mb(proc.pid)
        run_cli(["index", str(ws)])  # through the daemon: waits until its first run is done
        indexed_rss = rss_mb(proc.pid)
        with_daemon = [run_cli(["search", QUERIES[i % len(QUERIES)], "-w", str(ws)]) for i in range(args.rounds)]

        backend = keyring_secret.select_backend()
        secret = keyring_secret.read_secret(paths.id, backend)
        assert secret is not None
        endpoint = find_daemon(paths)
        connect, per_request, keyring_read = [], [], []
        for i in range(args.rounds):
            t = time.perf_counter()
            keyring_secret.read_secret(paths.id, backend)
            keyring_read.append(time.perf_counter() - t)
            t = time.perf_counter()
            client = DaemonClient(endpoint, secret)
            client.initialize(ws.as_uri())
            connect.append(time.perf_counter() - t)
            for j in range(20):
                t = time.perf_counter()
                client.request("forge/search", {"query": QUERIES[(i + j) % len(QUERIES)]})
                per_request.append(time.perf_counter() - t)
            client.close()

        key, replay = os.urandom(32), ReplayCache()
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "forge/search",
                           "params": {"query": "parse a duration", "limit": 10}}).encode()
        msg = json.loads(body)
        n = 20000
        t = time.perf_counter()
        for _ in range(n):
            verify(key, make_proof(key, "forge/search", body), body, msg, replay)
        proof_us = (time.perf_counter() - t) / n * 1e6

        elapsed, lat, errors = asyncio.run(flood(endpoint, secret, ws, 50, 20))
        print()
        print(f"{'measure':<46} {'value':>12}")
        print(f"{'CLI search, no daemon: p50 / p95 (ms)':<46} {pct(no_daemon, 50):6.0f} / {pct(no_daemon, 95):.0f}")
        print(f"{'CLI search, via daemon: p50 / p95 (ms)':<46} {pct(with_daemon, 50):6.0f} / {pct(with_daemon, 95):.0f}")
        print(f"{'  ratio no-daemon / daemon (p50)':<46} {pct(no_daemon, 50) / pct(with_daemon, 50):10.1f}x")
        print(f"{'keyring read (Secret Service) p50 (ms)':<46} {pct(keyring_read, 50):10.1f}")
        print(f"{'connect+auth+initialize p50 (ms)':<46} {pct(connect, 50):10.1f}")
        print(f"{'search on an open connection p50 / p99 (ms)':<46} {pct(per_request, 50):6.1f} / {pct(per_request, 99):.1f}")
        print(f"{'proof make+verify per message (us)':<46} {proof_us:10.1f}")
        print(f"{'flood 1000 searches/50 conns: s, req/s':<46} {elapsed:6.1f} s, {1000 / elapsed:.0f}/s")
        print(f"{'flood p50 / p99 (ms), errors':<46} {pct(lat, 50):6.0f} / {pct(lat, 99):.0f}, {errors}")
        print(f"{'daemon RSS idle / after indexing (MB)':<46} {idle_rss:6.0f} / {indexed_rss:.0f}")
        print(f"{'daemon RSS after the flood (MB)':<46} {rss_mb(proc.pid):10.0f}")
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
