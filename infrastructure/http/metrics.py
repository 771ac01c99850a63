"""Prometheus metrics: what the service did (counters, histograms) and what the store holds
(view lag, quarantine size: read from the database at scrape time).

With several worker processes, ``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a scratch
directory; each worker then writes its counters there and a scrape, whichever worker answers
it, adds them all up. Metric names carry no customer identifiers, only outcomes and codes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
GROUP_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


@dataclass(frozen=True)
class StoreState:
    """What a scrape reads from the database."""

    views: list[dict[str, Any]]
    quarantine_open: int


class Metrics:
    """The service's metrics, in a registry of its own (none at import time)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.notifications = Counter(
            "partner_ledger_notifications",
            "Webhook deliveries by outcome: recorded, duplicate, quarantined (NOT_JSON "
            "included), unauthorized, too_large, unavailable.",
            ["outcome"],
            registry=self.registry,
        )
        self.quarantined = Counter(
            "partner_ledger_quarantined_notifications",
            "Webhook deliveries quarantined, by reason code.",
            ["reason"],
            registry=self.registry,
        )
        self.ingest_seconds = Histogram(
            "partner_ledger_ingest_seconds",
            "From an authenticated webhook request to its answer (commit included).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.commit_group_size = Histogram(
            "partner_ledger_commit_group_size",
            "Notifications committed together in one transaction (group commit).",
            buckets=GROUP_BUCKETS,
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "partner_ledger_commit_seconds",
            "Duration of one group's Ledger.receive call (one transaction).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_group(self, size: int, seconds: float) -> None:
        self.commit_group_size.observe(size)
        self.commit_seconds.observe(seconds)

    def count(self, outcome: str, reason: str | None = None) -> None:
        self.notifications.labels(outcome=outcome).inc()
        if reason is not None:
            self.quarantined.labels(reason=reason).inc()

    def render(self, read_state: Callable[[], StoreState]) -> bytes:
        """The exposition text: this process's (or all workers') counters, then the store's
        gauges. Blocking: reads the database."""
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            counters = CollectorRegistry()
            MultiProcessCollector(counters, path=directory)  # type: ignore[no-untyped-call]
        else:
            counters = self.registry
        store = CollectorRegistry(auto_describe=False)
        store.register(_StoreCollector(read_state))
        return generate_latest(counters) + generate_latest(store)


class _StoreCollector(Collector):
    def __init__(self, read_state: Callable[[], StoreState]) -> None:
        self._read_state = read_state

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "partner_ledger_database_up", "1 when the last scrape could read the database."
        )
        try:
            state = self._read_state()
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        head = GaugeMetricFamily("partner_ledger_log_head", "Position of the last recorded event.")
        head.add_metric([], max((v["head"] for v in state.views), default=0))
        yield head
        gauges = {
            "position": GaugeMetricFamily(
                "partner_ledger_view_position",
                "Last position folded into the view.",
                labels=["view"],
            ),
            "lag_events": GaugeMetricFamily(
                "partner_ledger_view_lag_events",
                "Events recorded but not yet in the view.",
                labels=["view"],
            ),
            "oldest_unprocessed_age_seconds": GaugeMetricFamily(
                "partner_ledger_view_lag_seconds",
                "Age of the oldest event not yet in the view (0 when current).",
                labels=["view"],
            ),
            "dead_letters": GaugeMetricFamily(
                "partner_ledger_view_dead_letters",
                "Events the view could not project.",
                labels=["view"],
            ),
        }
        for view in state.views:
            for key, gauge in gauges.items():
                gauge.add_metric([view["view"]], float(view[key] or 0))
        yield from gauges.values()
        quarantine = GaugeMetricFamily(
            "partner_ledger_quarantine_open", "Quarantined payloads not yet resolved."
        )
        quarantine.add_metric([], state.quarantine_open)
        yield quarantine
