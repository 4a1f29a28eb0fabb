"""``manage.py bench``: drives a running HTTP server open-loop and reports latency and throughput.

Open loop: every request has a scheduled send time (a fixed rate); latency is measured from that
scheduled time, not from when a worker got round to sending it, so a stall of the server shows up
in the numbers instead of silently lowering the request rate (no coordinated omission).

Each call's life is two requests: ``POST /calls`` and, once it is ASSIGNED, ``POST
/calls/{id}/complete`` (a queued call is completed when an agent picks it up). At the end every call
must be in a terminal state, no agent may have held two calls at once, and Redis must equal Postgres.
"""

from __future__ import annotations

import http.client
import json
import queue
import statistics
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    array = np.asarray(values, dtype=float)
    p50, p95, p99 = np.percentile(array, [50, 95, 99])
    return {
        "count": len(values),
        "mean": round(float(array.mean()), 3),
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(array.max()), 3),
    }


@dataclass
class TenantTarget:
    slug: str
    api_key: str


@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    create_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    complete_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    server_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    call_ids: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    pending: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


class _Connection:
    """One keep-alive HTTP connection per worker thread."""

    def __init__(self, base_url: str) -> None:
        parsed = urllib.parse.urlparse(base_url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, key: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        payload = json.dumps(body) if body is not None else None
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                return response.status, (json.loads(data) if data else {})
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


def run_open_loop(
    *,
    base_url: str,
    targets: list[TenantTarget],
    rate: float,
    duration: float,
    workers: int,
    progress: Callable[[str], None] | None = None,
) -> tuple[Results, float]:
    """Send ``rate`` new calls per second (spread round-robin over the tenants) for ``duration``
    seconds; complete each assigned call at once. Returns the results and the wall time taken."""
    results = Results()
    work: queue.Queue[tuple[float, str, TenantTarget, str | None] | None] = queue.Queue()
    phone = iter(range(10**9))

    def worker() -> None:
        connection = _Connection(base_url)
        while True:
            item = work.get()
            if item is None:
                return
            scheduled, kind, target, call_id = item
            try:
                if kind == "create":
                    status, body = connection.request(
                        "POST",
                        "/calls",
                        target.api_key,
                        {"phone_number": f"+3490{next(phone):08d}", "call_type": "llamada_tipo_1"},
                    )
                    elapsed = (time.perf_counter() - scheduled) * 1000
                    with results.lock:
                        results.create_ms[target.slug].append(elapsed)
                        results.statuses[str(body.get("status", status))] += 1
                        if status in (201, 202):
                            results.call_ids[target.slug].append(body["id"])
                        if status == 201:
                            results.server_ms[target.slug].append(float(body["assignment_time_ms"]))
                        elif status == 202:
                            results.pending[target.slug].add(body["id"])
                        elif status != 503:
                            results.errors.append(f"create {status} {str(body)[:200]}")
                    if status == 201:
                        work.put((time.perf_counter(), "complete", target, body["id"]))
                else:
                    status, body = connection.request(
                        "POST", f"/calls/{call_id}/complete", target.api_key, {"outcome": "OK"}
                    )
                    elapsed = (time.perf_counter() - scheduled) * 1000
                    with results.lock:
                        results.complete_ms[target.slug].append(elapsed)
                        if status != 200:
                            results.errors.append(f"complete {status} {str(body)[:200]}")
            except Exception as exc:  # every failure is counted, none stops the run
                with results.lock:
                    results.errors.append(f"{kind}: {exc!r}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    total = int(rate * duration)
    interval = 1.0 / rate
    last_report = started
    for n in range(total):
        scheduled = started + n * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        work.put((scheduled, "create", targets[n % len(targets)], None))
        if progress and time.perf_counter() - last_report >= 5:
            last_report = time.perf_counter()
            with results.lock:
                done = sum(len(v) for v in results.create_ms.values())
            progress(f"  {n + 1}/{total} sent, {done} answered, {len(results.errors)} errors")
    # Drain: queued calls get completed as agents pick them up.
    drain_deadline = time.perf_counter() + 60
    while time.perf_counter() < drain_deadline:
        if work.qsize() == 0:
            time.sleep(0.5)
            with results.lock:
                answered = sum(len(v) for v in results.create_ms.values())
            if answered >= total and work.qsize() == 0:
                break
        time.sleep(0.1)
    complete_open_calls(base_url, targets, results)
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join(timeout=30)
    return results, time.perf_counter() - started


def complete_open_calls(base_url: str, targets: list[TenantTarget], results: Results) -> None:
    """Queued calls were handed to agents as others completed: complete those too, until none is open."""
    connection = _Connection(base_url)
    for _ in range(200):
        open_any = False
        for target in targets:
            _, body = connection.request("GET", "/calls?status=ASSIGNED&page_size=500", target.api_key, None)
            for call in body.get("results", []):
                open_any = True
                code, answer = connection.request(
                    "POST", f"/calls/{call['id']}/complete", target.api_key, {"outcome": "OK"}
                )
                if code != 200:
                    results.errors.append(f"drain complete {code} {str(answer)[:200]}")
            _, body = connection.request("GET", "/calls?status=QUEUED&page_size=1", target.api_key, None)
            if body.get("count"):
                open_any = True
        if not open_any:
            return
        time.sleep(0.2)


def summarize(results: Results, wall_seconds: float) -> dict[str, Any]:
    every_create = [v for values in results.create_ms.values() for v in values]
    every_complete = [v for values in results.complete_ms.values() for v in values]
    every_server = [v for values in results.server_ms.values() for v in values]
    completed_lives = len(every_complete)
    return {
        "wall_seconds": round(wall_seconds, 2),
        "calls_created": len(every_create),
        "calls_completed_by_bench": completed_lives,
        "throughput_calls_per_second": round(len(every_create) / wall_seconds, 1) if wall_seconds else 0,
        "throughput_calls_per_hour": round(len(every_create) / wall_seconds * 3600) if wall_seconds else 0,
        "statuses": dict(results.statuses),
        "errors": len(results.errors),
        "error_samples": results.errors[:10],
        "client_create_ms": percentiles(every_create),
        "client_complete_ms": percentiles(every_complete),
        "server_assignment_ms": percentiles(every_server),
        "per_tenant": {
            slug: {
                "client_create_ms": percentiles(results.create_ms[slug]),
                "server_assignment_ms": percentiles(results.server_ms[slug]),
            }
            for slug in sorted(results.create_ms)
        },
    }


def engine_microbench(
    *, iterations: int, schema_name: str = "bench_engine", progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The Redis claim alone: claim + release of one agent, ``iterations`` times, through redis-py.
    ``progress`` gets a line every 5 s and one at the end."""
    from assignment import engine

    engine.forget_tenant(schema_name=schema_name)
    agents = [(f"agent-{n:04d}", 1, 1000 + n) for n in range(50)]
    engine.rebuild(schema_name=schema_name, state=engine.RebuildInput(agents, [], [], []), epoch="bench", type_ids=(1,))
    claim_ms: list[float] = []
    last_report = time.perf_counter()
    for n in range(iterations):
        started = time.perf_counter()
        result = engine.claim(
            schema_name=schema_name,
            call_id=f"call-{n}",
            strategy="longest_idle",
            priority=0,
            queued_at_ms=n,
            max_queue_length=100,
            type_ids=(1,),
            p_ok_by_type={1: 0.5},
        )
        claim_ms.append((time.perf_counter() - started) * 1000)
        engine.release(
            schema_name=schema_name,
            agent_id=result.agent_id or "",
            agent_type_id=1,
            idle_since_ms=10_000 + n,
            expected_call_id=f"call-{n}",
            type_ids=(1,),
        )
        if progress and (n + 1 == iterations or time.perf_counter() - last_report >= 5):
            last_report = time.perf_counter()
            progress(f"  {n + 1}/{iterations} claims")
    engine.forget_tenant(schema_name=schema_name)
    return {"claim_ms": percentiles(claim_ms), "mean_claim_ms": round(statistics.fmean(claim_ms), 4)}
