"""The opt-in Prometheus endpoint (`--metrics 127.0.0.1:9464`, or `metricsAddress`).

Serves prometheus_client's default registry (every metric is defined in
`indexer/core/metrics.py`) with prometheus_client's own WSGI server in a daemon thread. Loopback
only: metrics name workspaces and show activity, so an address that resolves to anything
but 127.0.0.0/8 or ::1 is refused. The per-workspace gauges (files, chunks, vectors, queue
depth) are refreshed from `Workspace.status()` (cheap: SQLite counts) at every scrape, and
after every index run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.metrics_core import Metric

from indexer.core import metrics
from indexer.core.errors import ForgeError
from server.loopback import loopback_host as resolve_loopback
from server.loopback import split_host_port

if TYPE_CHECKING:
    from server.hosts import MetricsHost
    from server.roots import RootState

log = logging.getLogger(__name__)

DEFAULT_PORT = 9464


class MetricsAddressError(ForgeError):
    """The metrics address is malformed, not loopback, or its port is taken."""


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:9464` for IPv6; a bare `:PORT` means 127.0.0.1) → (host, port)."""
    return split_host_port(text, "metrics address", DEFAULT_PORT, MetricsAddressError)


def loopback_host(host: str, port: int) -> str:
    """`host` as a numeric loopback address; `MetricsAddressError` if it is anything else."""
    return resolve_loopback(host, port, "metrics address", MetricsAddressError)


@dataclass
class MetricsServer:
    """A running endpoint; `close()` stops it."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _RefreshingRegistry:
    """The default registry, with the workspace gauges refreshed just before each scrape."""

    def __init__(self, refresh: Callable[[], None] | None) -> None:
        self._refresh = refresh

    def collect(self) -> Iterable[Metric]:
        if self._refresh is not None:
            try:
                self._refresh()
            except Exception:  # a scrape still answers with what it has
                log.debug("refreshing the workspace gauges failed", exc_info=True)
        return REGISTRY.collect()

    def restricted_registry(self, names: Iterable[str]) -> Any:
        collect = self.collect

        class _Restricted:
            def collect(self) -> Iterator[Metric]:
                wanted = set(names)
                for metric in collect():
                    samples = [s for s in metric.samples if s.name in wanted]
                    if samples:
                        m = Metric(metric.name, metric.documentation, metric.type)
                        m.samples = samples
                        yield m

        return _Restricted()


def start_metrics_server(address: str, refresh: Callable[[], None] | None = None) -> MetricsServer:
    """Serve the metrics on a loopback `address`; `MetricsAddressError` says why not."""
    host, port = parse_address(address)
    numeric = loopback_host(host, port)
    try:
        server, thread = start_http_server(port, addr=numeric, registry=_RefreshingRegistry(refresh))
    except OSError as exc:
        raise MetricsAddressError(
            f"metrics address {address}: cannot listen ({exc.strerror or exc}); "
            "another process holds that port: pick a free one with --metrics 127.0.0.1:PORT"
        ) from None
    bound = server.server_address
    running = MetricsServer(numeric, int(bound[1]), server, thread)
    log.info("Prometheus metrics at %s", running.url)
    return running


def serve_for(ls: MetricsHost, address: str | None) -> MetricsServer | None:
    """Start the endpoint for a running server if `address` is set; log and carry on if it cannot."""
    if not address:
        return None
    try:
        return start_metrics_server(address, refresh=lambda: observe_roots(ls))
    except MetricsAddressError as exc:
        log.error("no metrics endpoint: %s", exc)
        return None


# --- the per-workspace gauges ----------------------------------------------------------


def observe_roots(ls: MetricsHost) -> None:
    """Set files/chunks/vectors/queue depth for every open root of `ls`."""
    for root in ls.roots.all():
        observe_root(root, ls.worker.queue_depth(root))


def observe_root(root: RootState, queued: int) -> None:
    """Set one root's gauges from `Workspace.status()` (SQLite counts; never slow)."""
    label = root.name
    metrics.QUEUE_DEPTH.labels(label).set(queued)
    ws = root.workspace
    if ws is None:
        return
    try:
        info = ws.status()
    except Exception:  # a broken index keeps its last values
        return
    for gauge, key in ((metrics.FILES, "files"), (metrics.CHUNKS, "chunks"), (metrics.VECTORS, "vectors")):
        value = info.get(key)
        if isinstance(value, int | float):
            gauge.labels(label).set(value)
