"""The Prometheus endpoint: loopback only, clear errors, fresh gauges, request counters."""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from indexer.core import metrics
from indexer.core.errors import IndexNotReady
from server import queries
from server.metrics_http import (
    MetricsAddressError,
    MetricsServer,
    observe_roots,
    parse_address,
    serve_for,
    start_metrics_server,
)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        return str(resp.read().decode())


def value(text: str, key: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def endpoint() -> Iterator[MetricsServer]:
    server = start_metrics_server("127.0.0.1:0")
    yield server
    server.close()


@pytest.mark.parametrize("address", ["0.0.0.0:9464", "192.0.2.7:9464", "[::]:9464", "8.8.8.8:80"])
def test_non_loopback_addresses_are_refused(address: str) -> None:
    with pytest.raises(MetricsAddressError, match="not loopback"):
        start_metrics_server(address)


@pytest.mark.parametrize("address", ["9464", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000"])
def test_malformed_addresses_say_how_to_write_one(address: str) -> None:
    with pytest.raises(MetricsAddressError, match="HOST:PORT"):
        parse_address(address)


def test_an_unresolvable_name_is_refused() -> None:
    with pytest.raises(MetricsAddressError, match="cannot resolve"):
        start_metrics_server("no-such-host.invalid:9464")


def test_loopback_names_and_ipv6_are_accepted() -> None:
    for address in ("localhost:0", "[::1]:0", ":0"):
        try:
            server = start_metrics_server(address)
        except MetricsAddressError as exc:
            if "::1" in address and "cannot listen" in str(exc):
                continue  # no IPv6 on this machine
            raise
        try:
            assert "forge_indexer_requests_total" in get(server.url)
            assert server.host in ("127.0.0.1", "::1")
        finally:
            server.close()


def test_serves_the_default_registry_with_process_metrics(endpoint: MetricsServer) -> None:
    text = get(endpoint.url)
    assert "# TYPE forge_indexer_index_runs_total counter" in text
    assert "# TYPE forge_indexer_request_latency_seconds histogram" in text
    assert (value(text, "process_resident_memory_bytes") or 0) > 0


def test_a_port_in_use_is_a_clear_error_and_the_server_carries_on(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsAddressError, match="another process holds that port"):
            start_metrics_server(f"127.0.0.1:{port}")
        ls: Any = SimpleNamespace(roots=SimpleNamespace(all=list))
        with caplog.at_level(logging.ERROR):
            assert serve_for(ls, f"127.0.0.1:{port}") is None
        assert "no metrics endpoint" in caplog.text
    assert serve_for(ls, None) is None


class _Workspace:
    def __init__(self, files: int) -> None:
        self.files = files

    def status(self) -> dict[str, object]:
        return {"files": self.files, "chunks": 2 * self.files, "vectors": 2 * self.files}


def test_workspace_gauges_are_read_at_scrape_time() -> None:
    ws = _Workspace(3)
    root = SimpleNamespace(name="gauge-ws", workspace=ws)
    ls: Any = SimpleNamespace(
        roots=SimpleNamespace(all=lambda: [root]), worker=SimpleNamespace(queue_depth=lambda r: 7)
    )
    server = start_metrics_server("127.0.0.1:0", refresh=lambda: observe_roots(ls))
    try:
        label = '{workspace="gauge-ws"}'
        first = get(server.url)
        assert value(first, f"forge_indexer_files{label}") == 3
        assert value(first, f"forge_indexer_queue_depth{label}") == 7
        ws.files = 5  # no run in between: the scrape itself reads the status
        second = get(server.url)
        assert value(second, f"forge_indexer_files{label}") == 5
        assert value(second, f"forge_indexer_vectors{label}") == 10
        only = get(server.url + "?name[]=forge_indexer_files")
        assert "forge_indexer_files" in only and "forge_indexer_chunks" not in only
    finally:
        server.close()


def test_requests_are_counted_timed_and_failures_counted_by_kind(tmp_path: Path) -> None:
    def sample(name: str, labels: dict[str, str]) -> float:
        from prometheus_client import REGISTRY

        return REGISTRY.get_sample_value(name, labels) or 0.0

    method = {"method": "forge/search"}
    before = sample("forge_indexer_requests_total", method)
    errors = sample("forge_indexer_request_errors_total", {**method, "kind": "IndexNotReady"})
    timed = sample("forge_indexer_request_latency_seconds_count", method)
    params: Any = SimpleNamespace(limit=5, mode="hybrid")
    with pytest.raises(IndexNotReady):
        queries.search([], params, None)  # no roots: "no workspace folder is open"
    assert sample("forge_indexer_requests_total", method) == before + 1
    assert sample("forge_indexer_request_errors_total", {**method, "kind": "IndexNotReady"}) == errors + 1
    assert sample("forge_indexer_request_latency_seconds_count", method) == timed + 1
    assert metrics.REQUESTS is not None
