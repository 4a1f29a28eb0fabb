"""Assignment metrics: a Prometheus histogram (process-local, scraped per process or aggregated by
the multiprocess collector) and per-tenant recent samples in Redis for percentiles."""

from __future__ import annotations

from prometheus_client import Histogram

ASSIGNMENT_SECONDS = Histogram(
    "callcenter_assignment_seconds",
    "Time from a request reaching the service to the assignment being written.",
    ["tenant"],
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)


def observe_assignment(*, schema_name: str, milliseconds: float) -> None:
    ASSIGNMENT_SECONDS.labels(tenant=schema_name).observe(milliseconds / 1000)
