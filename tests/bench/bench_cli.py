"""CLI start-up through a running daemon: the daemon client against the full CLI, side by side.

    dbus-run-session -- bash tests/keyring.sh .venv/bin/python tests/bench/bench_cli.py [--runs N]

(`tests/keyring.sh` gives a headless machine a real Secret Service; on a desktop the user's
keyring is used and the wrapper is not needed.)

A copy of fixtures/polyglot is indexed, a daemon is started for it, and each of `search`,
`context` and `status` is run N times as a user would, `forge-indexer CMD ...`, timed as a
whole process (interpreter start included). Three ways alternate in one run:

- **daemon client**: the installed command as it is (`server.cli_fast` answers);
- **full CLI**: the same command with `--log-format text`, an option only the full CLI
  reads, so the whole typer/pydantic CLI starts and then asks the same daemon;
- **no daemon** (search only, a few runs): the same search after the daemon stops, in-process.

Bytecode caching is on (as on an installed copy), whatever the environment says. Prints
medians and the interpreter's own start-up (`python -c pass`) as the floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args()
    exe = str(BIN / "forge-indexer")
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        ws = Path(tmp) / "ws"
        shutil.copytree(REPO / "fixtures" / "polyglot", ws)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["FORGE_INDEXER_STATE_DIR"] = str(Path(tmp) / "state")
        timed([exe, "index", str(ws)], env)
        daemon = subprocess.Popen([exe, "daemon", "-w", str(ws)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while str(ws) not in subprocess.run([exe, "daemon", "status"], capture_output=True, text=True,
                                                env=env).stdout:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit("the daemon did not start")
                time.sleep(0.2)
            commands = {
                "search": ["search", "parse a duration", "-w", str(ws)],
                "context": ["context", "parse a duration", "-w", str(ws), "--budget", "300"],
                "status": ["status", "-w", str(ws)],
            }
            floor = [timed([sys.executable, "-c", "pass"], env) for _ in range(args.runs)]
            rows = []
            for name, argv in commands.items():
                for cmd in ([exe, *argv], [exe, "--log-format", "text", *argv]):
                    timed(cmd, env)  # warm: bytecode written, page cache
                fast, full = [], []
                for _ in range(args.runs):
                    fast.append(timed([exe, *argv], env))
                    full.append(timed([exe, "--log-format", "text", *argv], env))
                rows.append((name, statistics.median(fast), statistics.median(full)))
        finally:
            daemon.terminate()
            daemon.wait(30)
        alone = [timed([exe, *commands["search"]], env) for _ in range(3)]
    print(f"\n{args.runs} runs each, medians; interpreter start-up alone {statistics.median(floor) * 1000:.0f} ms")
    print("| command | daemon client | full CLI, same daemon | ratio |\n|---|---|---|---|")
    for name, fast_s, full_s in rows:
        print(f"| {name} | {fast_s * 1000:.0f} ms | {full_s * 1000:.0f} ms | {full_s / fast_s:.1f}x |")
    print(f"search without a daemon (in-process, model load included): {statistics.median(alone):.2f} s")


if __name__ == "__main__":
    main()
