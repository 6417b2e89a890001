"""A 10,000-file workspace through the real daemon, watched through its Prometheus endpoint.

The workspace is generated at test time (never committed): 10,000 one-line Python files
(`def f1234(): pass`) in 100 folders. Every chunk carries its file's path in its header,
so no two chunks share a text and every one is really embedded (identical file contents
would not help: the vector cache is keyed by chunk text, path included). The files and
their paths are kept short (about 19 tokens a chunk) to keep the embedding time down.
Measured on 2 cores shared with other test runs (load average ~7): 542 s to index, 386
tokens/s, daemon peak RSS 570 MB (906 s and 772 MB with 23-token chunks).

The daemon runs with `--metrics` on a free loopback port and JSON logs; the test reads the
metrics with a plain HTTP GET (urllib) and checks the counts, that the daemon's peak RSS
(VmHWM) stays bounded, that a search shows up in the request counters, and that the
search's log lines carry a request id.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.chroma_helpers import free_port
from tests.e2e.daemon_helpers import running_daemon

FILES = 10_000
PER_FOLDER = 100
#: The daemon's peak RSS (model, Chroma, SQLite, the 10k-file scan) must stay under this.
PEAK_RSS_LIMIT_MB = 1200
INDEX_TIMEOUT_S = 1500.0

pytestmark = pytest.mark.timeout(1800)


def generate(root: Path, files: int = FILES) -> Path:
    for i in range(files):
        folder = root / f"d{i // PER_FOLDER:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"b{i:04d}.py").write_text(f"def f{i}(): pass\n")
    return root


def scrape(url: str) -> dict[str, float]:
    """`name{labels}` → value, from the text exposition format."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def test_ten_thousand_files_counted_by_the_metrics_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = generate(tmp_path / "big")
    label = f'{{workspace="{ws.name}"}}'
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    monkeypatch.setenv("FORGE_INDEXER_LOG_FORMAT", "json")
    monkeypatch.setenv("FORGE_INDEXER_DAEMON_IDLE_TIMEOUT_S", "0")
    started = time.monotonic()
    with running_daemon(ws, "--metrics", f"127.0.0.1:{port}") as daemon:
        pid = daemon.pid
        seen: dict[str, float] = {}
        deadline = time.monotonic() + INDEX_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                seen = scrape(url)
            except OSError:
                seen = {}
            if seen.get('forge_indexer_index_runs_total{outcome="ok"}', 0) >= 1 and seen.get(
                f"forge_indexer_files{label}"
            ) == FILES:
                break
            if daemon.proc is not None and daemon.proc.poll() is not None:
                raise AssertionError(f"the daemon exited: {daemon.log_text()[-2000:]}")
            if seen.get('forge_indexer_index_runs_total{outcome="error"}', 0):
                raise AssertionError(f"the index run failed: {daemon.log_text()[-2000:]}")
            time.sleep(2)
        else:
            raise AssertionError(f"not indexed within {INDEX_TIMEOUT_S} s; last scrape: "
                                 f"{ {k: v for k, v in seen.items() if k.startswith('forge_indexer_')} }")
        indexed_s = time.monotonic() - started

        assert seen[f"forge_indexer_files{label}"] == FILES
        chunks = seen[f"forge_indexer_chunks{label}"]
        assert chunks >= FILES
        assert seen[f"forge_indexer_vectors{label}"] == chunks
        assert seen[f"forge_indexer_queue_depth{label}"] == 0
        assert seen["forge_indexer_embed_tokens_total"] > 0
        assert seen["forge_indexer_embed_tokens_per_second"] > 0
        assert seen["forge_indexer_index_run_duration_seconds_count"] >= 1
        assert seen["process_resident_memory_bytes"] > 0

        before = seen.get('forge_indexer_requests_total{method="forge/search"}', 0)
        found = daemon.cli("search", "f1234", "-w", str(ws), "--json")
        assert json.loads(found.stdout)["results"], found.stdout
        after = scrape(url)
        assert after['forge_indexer_requests_total{method="forge/search"}'] == before + 1
        assert after['forge_indexer_request_latency_seconds_count{method="forge/search"}'] >= 1

        peak = peak_rss_mb(pid)
        log_lines = daemon.log_text().splitlines()
    print(f"\n{FILES} files, {int(chunks)} chunks indexed in {indexed_s:.0f} s; daemon peak RSS {peak:.0f} MB; "
          f"{after['forge_indexer_embed_tokens_per_second']:.0f} tokens/s")
    assert peak < PEAK_RSS_LIMIT_MB, f"peak RSS {peak:.0f} MB"

    records = [json.loads(line) for line in log_lines if line.startswith("{")]
    assert records and all({"ts", "level", "logger", "message"} <= r.keys() for r in records)
    by_request = [r for r in records if re.fullmatch(r"c\d+:\S+", str(r.get("request_id", "")))]
    assert by_request, "no log line carries a daemon request id"
    assert any(r.get("workspace") == ws.name for r in records)
    assert not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")  # nothing exported in this run
