"""OpenTelemetry spans around index runs and searches, only when the user enables an exporter.

Off by default (`otelExporter` unset): nothing from OpenTelemetry is imported and no
network is touched; `search_span` and `record_index_run` cost a global read. On:

- "otlp": spans go by OTLP/gRPC to the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (and the
  other `OTEL_EXPORTER_OTLP_*` variables), batched in a background thread;
- "console": each span is written to the log (logger `forge.tracing`), for debugging.

The tracer provider is our own, never installed as the global one: libraries that trace
through the global API (Chroma has its own OpenTelemetry settings, which stay off) do not
start sending spans because we export ours.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import IO, Any, cast

log = logging.getLogger("forge.tracing")  # not under `server.`: never forwarded to clients

SERVICE_NAME = "forge-indexer"
EXPORTERS = ("otlp", "console")

_lock = threading.Lock()
_tracer: Any = None  # an opentelemetry Tracer once enabled
_provider: Any = None


def enabled() -> bool:
    return _tracer is not None


def setup_tracing(exporter: str | None) -> bool:
    """Start exporting spans with `exporter` ("otlp", "console"); None leaves tracing off.

    Idempotent; returns whether tracing is on.
    """
    global _tracer, _provider
    if not exporter:
        return enabled()
    if exporter not in EXPORTERS:
        raise ValueError(f"otelExporter must be one of {', '.join(EXPORTERS)}, not {exporter!r}")
    with _lock:
        if _tracer is not None:
            return True
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )

        from server.version import version

        provider = TracerProvider(
            resource=Resource.create({"service.name": SERVICE_NAME, "service.version": version()})
        )
        if exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            where = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
                "OTEL_EXPORTER_OTLP_ENDPOINT", "the OTLP default (localhost:4317)"
            )
        else:
            console = ConsoleSpanExporter(
                out=cast(IO[str], _LogStream()), formatter=lambda span: span.to_json(indent=None)
            )
            provider.add_span_processor(SimpleSpanProcessor(console))
            where = "the log"
        _provider = provider
        _tracer = provider.get_tracer("forge_indexer", version())
    log.info("OpenTelemetry tracing on: %s spans to %s", exporter, where)
    return True


def shutdown_tracing() -> None:
    """Flush and stop the exporter (the daemon calls this on its way out)."""
    global _tracer, _provider
    with _lock:
        provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        with contextlib.suppress(Exception):
            provider.shutdown()


class SpanNotes(dict[str, Any]):
    """Attributes to put on a span when it ends (a plain dict while tracing is off)."""


@contextlib.contextmanager
def search_span(name: str, **attributes: Any) -> Iterator[SpanNotes]:
    """A span around a search (or context/symbol request); add results to the yielded dict.

    The span gets `attributes`, whatever was added to the notes, `latency_ms`, and an
    error status if the block raised.
    """
    notes = SpanNotes(attributes)
    tracer = _tracer
    if tracer is None:
        yield notes
        return
    started = time.perf_counter()
    with tracer.start_as_current_span(name, record_exception=True, set_status_on_exception=True) as span:
        try:
            yield notes
        finally:
            notes["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
            span.set_attributes(_attributes(notes))


def record_index_run(workspace: str, started_wall: float, outcome: str, **attributes: Any) -> None:
    """One span for an index run that began at `started_wall` (time.time()) and ends now.

    A run spans several worker jobs (the scan, then embedding slices), so the span is
    recorded at its end with an explicit start time rather than held open.
    """
    tracer = _tracer
    if tracer is None:
        return
    span = tracer.start_span("index", start_time=int(started_wall * 1e9))
    span.set_attributes(_attributes({"workspace": workspace, "outcome": outcome, **attributes}))
    if outcome == "error":
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR))
    span.end()


def _attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Only what OpenTelemetry accepts as attribute values (None and objects dropped)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            out[key] = list(value)
    return out


class _LogStream(io.TextIOBase):
    """A file-like target for the console exporter that writes each span as a log line."""

    def write(self, text: str) -> int:
        if text.strip():
            log.info("span %s", text.strip())
        return len(text)
