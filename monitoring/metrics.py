"""Prometheus metrics of the streaming scorer, on a dedicated registry (tests and scorers never collide).

Consumer lag is ``high watermark - committed offset`` per partition. Tansu 0.6 can under-report the high
watermark (it answers the first offset of the last batch + 1), so on that broker the lag gauge is a lower
bound, clamped at 0; the rate of ``fedtwin_scorer_messages_total`` against the producer's rate is reliable.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

#: Latency buckets (s) from produce to scored window / delivered alert.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class ScorerMetrics:
    """Counters, gauges and histograms one Scorer updates; ``serve(port)`` exposes them over HTTP."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "fedtwin_scorer_messages",
            "Sensor messages consumed, by outcome (scored|dlq)",
            ["outcome"],
            registry=r,
        )
        self.samples = Counter("fedtwin_scorer_samples", "Sensor samples accepted (per signal)", registry=r)
        self.windows = Counter("fedtwin_scorer_windows", "Windows scored", registry=r)
        self.alerts = Counter(
            "fedtwin_scorer_alerts", "Alerts delivered, by fault and kind", ["fault", "kind"], registry=r
        )
        self.gaps = Counter(
            "fedtwin_scorer_sequence_gaps", "Sequence gaps that reset a partial window", registry=r
        )
        self.duplicates = Counter("fedtwin_scorer_duplicate_chunks", "Replayed chunks dropped", registry=r)
        self.batches = Counter("fedtwin_scorer_batches", "Consume batches committed", registry=r)
        self.batch_size = Histogram(
            "fedtwin_scorer_batch_messages",
            "Messages per consume batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
            registry=r,
        )
        self.window_latency = Histogram(
            "fedtwin_scorer_window_latency_seconds",
            "Produce time of the completing chunk -> window scored",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.alert_latency = Histogram(
            "fedtwin_scorer_alert_latency_seconds",
            "Produce time of the completing chunk -> alert acknowledged",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "fedtwin_scorer_consumer_lag",
            "High watermark - committed offset (lower bound on Tansu)",
            ["partition"],
            registry=r,
        )
        self.model_version = Gauge("fedtwin_scorer_model_version", "Model version in use", registry=r)
        self.model_reloads = Counter(
            "fedtwin_scorer_model_reloads", "Model swaps, by result (ok|invalid)", ["result"], registry=r
        )
        self.invalid_windows = Counter(
            "fedtwin_scorer_invalid_windows",
            "Windows with a NaN/inf feature or score: not de-bounced, not published",
            registry=r,
        )
        self.suppressed_alerts = Counter(
            "fedtwin_scorer_suppressed_alerts",
            "Raises of a fault already open in Redis (a replay), not emitted again",
            registry=r,
        )
        self.dlq_truncated = Counter(
            "fedtwin_scorer_dlq_truncated",
            "Dead letters whose value was cut to the configured maximum",
            registry=r,
        )
        self.outages = Counter(
            "fedtwin_scorer_outages",
            "Times a service went away while the scorer needed it",
            ["service"],
            registry=r,
        )
        self._server: Any = None

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` on ``addr:port`` from a daemon thread."""
        self._server = start_http_server(port, addr=addr, registry=self.registry)

    def shutdown(self) -> None:
        """Stop the HTTP server started by ``serve``."""
        if self._server is not None:
            server, thread = self._server
            server.shutdown()
            thread.join(timeout=2)
            self._server = None

    def series_names(self) -> set[str]:
        """Every series name ``/metrics`` can show: ``_total`` of counters, ``_bucket`` etc. of histograms."""
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",),
        }
        return {
            family.name + suffix
            for family in self.registry.collect()
            for suffix in suffixes.get(family.type, ("",))
        }

    def value(self, name: str, **labels: str) -> float:
        """Value of a sample, e.g. ``value("fedtwin_scorer_messages_total", outcome="dlq")``; 0 if absent."""
        v = self.registry.get_sample_value(name, labels or None)
        return 0.0 if v is None else float(v)
