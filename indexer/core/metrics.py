"""Prometheus metrics: every name the daemon exports, defined once.

The metric objects live in prometheus_client's default registry and cost nothing to
update when nobody scrapes them; the daemon serves them only when asked for
(`--metrics 127.0.0.1:9464`, see `server/metrics_http.py`). Names and labels are documented
in docs/operations.md; keep the two in step. Gauges that describe a workspace's index are
labelled with its root's name (never its full path: metrics leave the process).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

NAMESPACE = "forge_indexer"

# --- the index ---------------------------------------------------------------------------
FILES = Gauge("files", "Files in the index.", ["workspace"], namespace=NAMESPACE)
CHUNKS = Gauge("chunks", "Chunks in the index.", ["workspace"], namespace=NAMESPACE)
VECTORS = Gauge("vectors", "Vectors in the vector store.", ["workspace"], namespace=NAMESPACE)
QUEUE_DEPTH = Gauge(
    "queue_depth", "Files waiting to be (re)indexed.", ["workspace"], namespace=NAMESPACE
)
INDEX_RUNS = Counter(
    "index_runs", "Index runs, by how they ended (ok, cancelled, error).", ["outcome"],
    namespace=NAMESPACE,
)
INDEX_DURATION = Histogram(
    "index_run_duration_seconds", "Wall time of index runs.", namespace=NAMESPACE,
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
EMBED_TOKENS = Counter("embed_tokens", "Tokens embedded for documents.", namespace=NAMESPACE)
EMBED_SECONDS = Counter(
    "embed_seconds", "Seconds spent embedding documents (rate of embed_tokens over this: tokens/s).",
    namespace=NAMESPACE,
)
EMBED_TOKENS_PER_S = Gauge(
    "embed_tokens_per_second", "Document embedding throughput of the last index run.",
    namespace=NAMESPACE,
)
RECONCILES = Counter(
    "reconcile_runs", "Periodic stat-based scans, and the changes they found.", ["found"],
    namespace=NAMESPACE,
)

# --- queries -----------------------------------------------------------------------------
REQUESTS = Counter(
    "requests", "Search, context and symbol requests.", ["method"], namespace=NAMESPACE
)
REQUEST_ERRORS = Counter(
    "request_errors", "Requests that failed, by method and error kind.", ["method", "kind"],
    namespace=NAMESPACE,
)
REQUEST_LATENCY = Histogram(
    "request_latency_seconds", "Latency of search, context and symbol requests.", ["method"],
    namespace=NAMESPACE,
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RATE_LIMITED = Counter(
    "rate_limited", "Requests refused because a connection exceeded its rate.", namespace=NAMESPACE
)

# --- remote engines ----------------------------------------------------------------------
REMOTE_CALLS = Counter(
    "remote_calls", "Calls to a remote engine, by target (chroma, embedder) and outcome.",
    ["target", "outcome"], namespace=NAMESPACE,
)
REMOTE_RETRIES = Counter(
    "remote_retries", "Retries of transient remote failures.", ["target"], namespace=NAMESPACE
)
BREAKER_STATE = Gauge(
    "breaker_state", "Circuit breaker of a remote target: 0 closed, 1 half-open, 2 open.",
    ["target"], namespace=NAMESPACE,
)

# --- the process -------------------------------------------------------------------------
# RSS, CPU and open files come from prometheus_client's own process collector
# (process_resident_memory_bytes, ...), registered by default on Linux.
