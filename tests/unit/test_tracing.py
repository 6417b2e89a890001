"""OpenTelemetry: off by default (nothing imported, no network), spans when an exporter is set."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import pytest

from server import tracing
from tests.conftest import REPO

OFF_SCRIPT = """
import socket, sys

def no_network(*args, **kwargs):
    raise AssertionError("tracing touched the network while off")

socket.socket.connect = no_network
socket.create_connection = no_network

from server import tracing, queries, jobs, metrics_http, server  # what the daemon loads
assert not tracing.setup_tracing(None)
with tracing.search_span("search", mode="hybrid", limit=5) as notes:
    notes["hits"] = 3
tracing.record_index_run("ws", 0.0, "ok", files=1)
tracing.shutdown_tracing()
loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
print(",".join(loaded) or "none")
"""


def test_off_by_default_imports_nothing_and_touches_no_network() -> None:
    out = subprocess.run([sys.executable, "-c", OFF_SCRIPT], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"


@pytest.fixture
def traced_off() -> Iterator[None]:
    yield
    tracing.shutdown_tracing()
    assert not tracing.enabled()


def test_an_unknown_exporter_is_refused(traced_off: None) -> None:
    with pytest.raises(ValueError, match="otlp, console"):
        tracing.setup_tracing("jaeger")


def test_console_spans_go_to_the_log(traced_off: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="forge.tracing"):
        assert tracing.setup_tracing("console")
        with tracing.search_span("search", mode="vector", limit=7) as notes:
            notes["hits"] = 4
        tracing.record_index_run("root_a", 1.0, "ok", files=10, chunks=12, tokens=300)
    spans = [json.loads(r.getMessage().split(" ", 1)[1]) for r in caplog.records if r.getMessage().startswith("span ")]
    search, index = spans
    assert search["name"] == "search"
    assert search["attributes"]["mode"] == "vector" and search["attributes"]["limit"] == 7
    assert search["attributes"]["hits"] == 4 and search["attributes"]["latency_ms"] >= 0
    assert index["name"] == "index"
    assert index["attributes"] == {"workspace": "root_a", "outcome": "ok", "files": 10, "chunks": 12, "tokens": 300}


def test_a_failed_search_span_has_an_error_status(traced_off: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="forge.tracing"):
        tracing.setup_tracing("console")
        with pytest.raises(RuntimeError), tracing.search_span("search", mode="hybrid", limit=1):
            raise RuntimeError("store gone")
    span = json.loads(caplog.records[-1].getMessage().split(" ", 1)[1])
    assert span["status"]["status_code"] == "ERROR"


def test_otlp_spans_reach_a_grpc_collector(traced_off: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real OTLP/gRPC receiver on loopback gets the spans, with their attributes."""
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    received: list[Any] = []

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # the gRPC method name
            received.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        tracing.setup_tracing("otlp")
        with tracing.search_span("search", mode="lexical", limit=3) as notes:
            notes["hits"] = 2
        tracing.shutdown_tracing()  # flushes the batch
    finally:
        server.stop(0)
    spans = [s for req in received for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert [s.name for s in spans] == ["search"]
    attrs = {a.key: a.value for a in spans[0].attributes}
    assert attrs["mode"].string_value == "lexical" and attrs["hits"].int_value == 2
    resource = {a.key: a.value.string_value for a in received[0].resource_spans[0].resource.attributes}
    assert resource["service.name"] == "forge-indexer"
