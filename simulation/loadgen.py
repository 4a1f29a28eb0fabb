"""The closed-loop load of ``manage.py bench --compare``, and the Markdown tables of bench reports.

Closed loop: each client holds one connection and does one call's life after another (``POST
/calls``, then ``POST /calls/{id}/complete`` when the call was assigned), so the throughput is what
the server sustains at that concurrency. The same lifecycle drives the product and the floor (a bare
Django service with the same two requests), alternately, so that the machine's noise falls on both.

The load comes from ``wrk`` with ``bench/lifecycle.lua`` when wrk is installed: it is written in C
and takes little of the CPU the servers need on a small machine. Without wrk a Python client does
the same work (threads, one ``http.client`` connection each); it takes much more CPU, and the report
says so. Both produce the same raw result (the JSON the Lua script prints), turned into a
``RunResult`` by ``run_result``.

A client stops only between two lifecycles once its time is up, so that it leaves no call open and
holds no agent. A call it still held when it was stopped (a server that did not answer in time) is
in ``left_open`` and is completed after the round, outside the timing.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LIFECYCLE_SCRIPT = Path(__file__).resolve().parent / "bench" / "lifecycle.lua"
CREATE_BODY = {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"}
REQUEST_TIMEOUT_SECONDS = 10
# How long past its time a client may take to finish the call it holds before it is stopped.
SETTLE_SECONDS = 5.0
SOCKET_ERRORS = ("connect", "read", "write", "timeout")

# Issue targets: the product's lifecycle throughput against the floor's, and its p99 per request.
COMPARE_TARGETS = (
    # (connections, what, limit): "ratio" is product/floor calls per second (at least the limit),
    # "p99_ratio" is product/floor p99 per request (at most the limit).
    (4, "ratio", 0.8),
    (16, "ratio", 0.8),
    (4, "p99_ratio", 1.3),
)
# The reference load: 10 tenants x 1,000 calls an hour x 50 agents, open loop.
REFERENCE_TENANTS = 10
REFERENCE_CALLS_PER_HOUR = 1000
REFERENCE_AGENTS = 50
REFERENCE_SERVER_P99_MS = 5.0
REFERENCE_CLIENT_P99_MS = 15.0

PYTHON_CLIENT_NOTE = (
    "wrk is not installed, so a Python client generated the load: it takes far more CPU than wrk, "
    "CPU the servers need on a small machine, so throughput and ratios are less trustworthy. "
    "Install wrk (Debian/Ubuntu: apt-get install wrk) for numbers to publish."
)


class LoadError(Exception):
    """The load generator could not run (wrk failed, or printed no result)."""


@dataclass
class RunResult:
    """One closed-loop run of one server at one connection count."""

    side: str  # "floor" or "product"
    round: int
    connections: int
    client: str  # "wrk" or "python"
    calls_per_second: float
    lifecycles: int
    requests: int
    seconds: float
    latency_ms: dict[str, float]
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    errors: int
    error_samples: list[str] = field(default_factory=list)
    left_open: list[str] = field(default_factory=list)
    lost_in_flight: int = 0
    cleanup_errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_connections(text: str) -> list[int]:
    """``"1,4,16"`` -> ``[1, 4, 16]`` (each at least 1)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ValueError(f"connection counts must be whole numbers separated by commas, not {text!r}") from exc
    if not values or min(values) < 1:
        raise ValueError(f"connection counts must be at least 1: {text!r}")
    return values


def errors_in(statuses: dict[str, int], socket_errors: dict[str, int]) -> int:
    """Every answer outside 2xx, and every connection, read, write or timeout error."""
    return sum(count for code, count in statuses.items() if not 200 <= int(code) <= 299) + sum(
        socket_errors.get(name, 0) for name in SOCKET_ERRORS
    )


def run_result(raw: dict[str, Any], *, side: str, round: int, connections: int, client: str) -> RunResult:
    """The raw result (the JSON the Lua script prints, or the Python client's) as a RunResult.

    Throughput is the sum of each client's own rate (its lifecycles divided by the time it ran), so a
    client that finished its last call a little past the deadline is measured over its own time."""
    threads = raw["threads"]
    rate = sum(t["lifecycles"] / t["seconds"] for t in threads if t["seconds"] > 0)
    statuses = {str(code): int(count) for code, count in raw["statuses"].items()}
    socket_errors = {name: int(raw["socket_errors"].get(name, 0)) for name in SOCKET_ERRORS}
    return RunResult(
        side=side,
        round=round,
        connections=connections,
        client=client,
        calls_per_second=round_to(rate, 2),
        lifecycles=sum(t["lifecycles"] for t in threads),
        requests=int(raw["requests"]),
        seconds=round_to(max((t["seconds"] for t in threads), default=0.0), 3),
        latency_ms={name: round_to(value, 3) for name, value in raw["latency_ms"].items()},
        statuses=dict(sorted(statuses.items())),
        socket_errors=socket_errors,
        errors=errors_in(statuses, socket_errors),
        error_samples=list(raw.get("error_samples", []))[:10],
        left_open=[t["pending"] for t in threads if t["pending"]],
        lost_in_flight=sum(1 for t in threads if t["inflight"] == "create"),
    )


def round_to(value: float, digits: int) -> float:
    return float(round(value, digits))


def _target(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "http" or not parsed.hostname:
        raise ValueError(f"expected an http:// URL, not {url!r}")
    return parsed.hostname, parsed.port or 80


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether something accepts connections at ``url``'s host and port."""
    try:
        with socket.create_connection(_target(url), timeout=timeout):
            return True
    except OSError:
        return False


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(url: str, *, connections: int, seconds: float, key: str, wrk: str = "wrk") -> dict[str, Any]:
    """One closed-loop run by wrk (one thread per connection); returns the script's raw result.

    wrk's own -d is only a safety net: each thread stops itself between two lifecycles once the
    deadline (``seconds`` from now, on the monotonic clock the script reads too) has passed and says
    so on stdout; wrk is interrupted (SIGINT: it still prints its results) as soon as every thread
    has, or ``SETTLE_SECONDS`` after the deadline if a server is slow to answer."""
    deadline = time.monotonic() + seconds
    command = [
        wrk,
        f"-t{connections}",
        f"-c{connections}",
        f"-d{int(seconds + SETTLE_SECONDS + 60)}s",
        f"--timeout={REQUEST_TIMEOUT_SECONDS}s",
        "-s",
        str(LIFECYCLE_SCRIPT),
        url,
    ]
    # Where a stopped thread's next connection goes instead of the server: accepted by the kernel,
    # never read (see the script).
    parking = socket.create_server(("127.0.0.1", 0), backlog=max(64, connections * 2))
    env = {
        **os.environ,
        "KEY": key,
        "BENCH_DEADLINE": repr(deadline),
        "BENCH_PARK_PORT": str(parking.getsockname()[1]),
    }
    try:
        return _wrk_process(command, env, connections, deadline)
    finally:
        parking.close()


def _wrk_process(command: list[str], env: dict[str, str], connections: int, deadline: float) -> dict[str, Any]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    all_done = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        done = 0
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("BENCH_THREAD_DONE"):
                done += 1
                if done == connections:
                    all_done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    all_done.wait(timeout=max(0.0, deadline + SETTLE_SECONDS - time.monotonic()))
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=REQUEST_TIMEOUT_SECONDS + 30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    reader.join(timeout=10)
    for line in lines:
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return result
    output = "\n".join(line for line in lines if not line.startswith("BENCH_THREAD_DONE"))
    raise LoadError(f"wrk printed no result (exit code {process.returncode}): {output.strip()[:500]}")


def run_python(url: str, *, connections: int, seconds: float, key: str) -> dict[str, Any]:
    """The same closed loop as the Lua script, from Python threads; returns the same raw result."""
    host, port = _target(url)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    create = json.dumps(CREATE_BODY)
    complete = json.dumps({"outcome": "OK"})
    stop = threading.Event()
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    socket_errors: Counter[str] = Counter()
    samples: list[str] = []
    threads: list[dict[str, Any]] = []

    def client() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_SECONDS)
        state: dict[str, Any] = {"lifecycles": 0, "created": 0, "pending": "", "inflight": "", "stopped": False}
        started = last = time.perf_counter()
        while not stop.is_set():
            pending = state["pending"]
            state["inflight"] = "complete" if pending else "create"
            path, body = (f"/calls/{pending}/complete", complete) if pending else ("/calls", create)
            sent = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                kind = "timeout" if isinstance(exc, TimeoutError) else "read"
                if isinstance(exc, ConnectionRefusedError):
                    kind = "connect"
                    time.sleep(0.01)  # no busy loop against a closed port
                with lock:
                    socket_errors[kind] += 1
                continue
            last = time.perf_counter()
            status = response.status
            with lock:
                latencies.append((last - sent) * 1000)
                statuses[str(status)] += 1
                if not 200 <= status <= 299 and len(samples) < 10:
                    samples.append(f"{state['inflight']} {status} {data[:200].decode(errors='replace')}")
            if state["inflight"] == "create" and status == 201:
                try:
                    state["pending"] = str(json.loads(data)["id"])
                    state["created"] += 1
                except (ValueError, KeyError, TypeError):
                    pass
            elif state["inflight"] == "complete":
                if status == 200:
                    state["lifecycles"] += 1
                    state["pending"] = ""
                elif 400 <= status <= 499:
                    state["pending"] = ""
            state["inflight"] = ""
            if not state["pending"] and last - started >= seconds:
                state["stopped"] = True
                break
        connection.close()
        state["seconds"] = last - started
        with lock:
            threads.append(state)

    workers = [threading.Thread(target=client, daemon=True) for _ in range(connections)]
    begun = time.perf_counter()
    for worker in workers:
        worker.start()
    deadline = begun + seconds + SETTLE_SECONDS
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.perf_counter()))
    stop.set()
    for worker in workers:
        worker.join(timeout=REQUEST_TIMEOUT_SECONDS + 5)
    duration = time.perf_counter() - begun
    array = np.asarray(latencies or [0.0], dtype=float)
    p50, p90, p99 = np.percentile(array, [50, 90, 99])
    return {
        "threads": threads,
        "statuses": dict(statuses),
        "socket_errors": {name: socket_errors[name] for name in SOCKET_ERRORS},
        "requests": len(latencies),
        "duration_s": duration,
        "latency_ms": {
            "mean": float(array.mean()),
            "p50": float(p50),
            "p90": float(p90),
            "p99": float(p99),
            "max": float(array.max()),
        },
        "error_samples": samples,
    }


def complete_calls(url: str, key: str, call_ids: Iterable[str]) -> list[str]:
    """Complete calls a client left open (``RunResult.left_open``); returns the failures."""
    host, port = _target(url)
    failures = []
    for call_id in call_ids:
        connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_SECONDS)
        try:
            connection.request(
                "POST",
                f"/calls/{call_id}/complete",
                body=json.dumps({"outcome": "OK"}),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            data = response.read()
            if response.status != 200:
                failures.append(f"cleanup complete {response.status} {data[:200].decode(errors='replace')}")
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"cleanup complete {call_id}: {exc!r}")
        finally:
            connection.close()
    return failures


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round_to(numerator / denominator, 3)


def compare_summary(runs: list[RunResult]) -> list[dict[str, Any]]:
    """Per connection count: every round's calls/s and p99 of each side, the ratio of the mean
    calls/s (product / floor) and the ratio of the mean p99 per request (product / floor)."""
    out = []
    for connections in sorted({run.connections for run in runs}):
        sides: dict[str, dict[str, Any]] = {}
        for side in ("floor", "product"):
            mine = sorted((r for r in runs if r.connections == connections and r.side == side), key=lambda r: r.round)
            rates = [r.calls_per_second for r in mine]
            p99s = [r.latency_ms["p99"] for r in mine]
            p50s = [r.latency_ms["p50"] for r in mine]
            sides[side] = {
                "calls_per_second": rates,
                "mean_calls_per_second": None if not rates else round_to(statistics.fmean(rates), 2),
                "p50_ms": p50s,
                "p99_ms": p99s,
                "mean_p99_ms": None if not p99s else round_to(statistics.fmean(p99s), 3),
                "errors": sum(r.errors + r.cleanup_errors for r in mine),
            }
        out.append(
            {
                "connections": connections,
                **sides,
                "ratio": _ratio(_mean(sides["product"]["calls_per_second"]), _mean(sides["floor"]["calls_per_second"])),
                "p99_ratio": _ratio(_mean(sides["product"]["p99_ms"]), _mean(sides["floor"]["p99_ms"])),
            }
        )
    return out


def compare_targets(summary: list[dict[str, Any]], *, errors: int, invariants_ok: bool) -> list[dict[str, Any]]:
    """The performance targets (docs/performance.md) this run measured, each with its value and verdict."""
    by_connections = {row["connections"]: row for row in summary}
    targets = []
    for connections, what, limit in COMPARE_TARGETS:
        row = by_connections.get(connections)
        if row is None:
            continue
        value = row[what]
        if what == "ratio":
            name = f"throughput product/floor at {connections} connections >= {limit}"
            met = value is not None and value >= limit
        else:
            name = f"p99 per request product/floor at {connections} connections <= {limit}"
            met = value is not None and value <= limit
        targets.append({"target": name, "value": value, "limit": limit, "met": met})
    targets.append({"target": "no errors", "value": errors, "limit": 0, "met": errors == 0})
    targets.append(
        {
            "target": "no open call, no double assignment, Redis equals Postgres",
            "value": "ok" if invariants_ok else "broken",
            "limit": "ok",
            "met": invariants_ok,
        }
    )
    return targets


def reference_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The reference load's targets: server-side assignment p99 and client p99 of POST /calls."""
    server = report["server_assignment_ms"].get("p99")
    client = report["client_create_ms"].get("p99")
    return [
        {
            "target": f"server-side assignment p99 < {REFERENCE_SERVER_P99_MS:g} ms",
            "value": server,
            "limit": REFERENCE_SERVER_P99_MS,
            "met": server is not None and server < REFERENCE_SERVER_P99_MS,
        },
        {
            "target": f"client p99 of POST /calls < {REFERENCE_CLIENT_P99_MS:g} ms",
            "value": client,
            "limit": REFERENCE_CLIENT_P99_MS,
            "met": client is not None and client < REFERENCE_CLIENT_P99_MS,
        },
        {"target": "no errors", "value": report["errors"], "limit": 0, "met": report["errors"] == 0},
        {
            "target": "no open call, no double assignment, Redis equals Postgres",
            "value": "ok" if report["invariants"]["ok"] else "broken",
            "limit": "ok",
            "met": bool(report["invariants"]["ok"]),
        },
    ]


# Markdown -----------------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _ms_span(values: list[float]) -> str:
    if not values:
        return "n/a"
    low, high = min(values), max(values)
    return f"{low:.1f} ms" if low == high else f"{low:.1f}-{high:.1f} ms"


def _targets_table(targets: list[dict[str, Any]]) -> list[str]:
    lines = ["| target | measured | met |", "|---|---|---|"]
    for target in targets:
        value = target["value"]
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        lines.append(f"| {target['target']} | {shown} | {'yes' if target['met'] else '**no**'} |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The tables of a bench report (``--json``) in Markdown, for the docs."""
    if report.get("mode") == "compare":
        return _compare_markdown(report)
    if "client_create_ms" in report:
        return _open_loop_markdown(report)
    raise ValueError("not a bench report (neither --compare nor an open-loop run)")


def _compare_markdown(report: dict[str, Any]) -> str:
    parameters = report["parameters"]
    rounds = parameters["rounds"]
    plural = "round" if rounds == 1 else "rounds"
    lines = [
        f"| connections | floor calls/s ({rounds} {plural}) | product calls/s ({rounds} {plural}) | ratio of means "
        "| p99 per request, floor / product | p99 ratio | errors, floor / product |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["summary"]:
        floor, product = row["floor"], row["product"]
        lines.append(
            f"| {row['connections']} "
            f"| {', '.join(_number(v, 0) for v in floor['calls_per_second'])} "
            f"| {', '.join(_number(v, 0) for v in product['calls_per_second'])} "
            f"| {_number(row['ratio'], 2)} "
            f"| {_ms_span(floor['p99_ms'])} / {_ms_span(product['p99_ms'])} "
            f"| {_number(row['p99_ratio'], 2)} "
            f"| {floor['errors']} / {product['errors']} |"
        )
    lines += [
        "",
        f"{parameters['seconds']:g} s per round, floor and product alternating, load from {report['client']}; "
        f"product tenant with {parameters['agents']} available agents and no wrap-up.",
        "",
        *_targets_table(report["targets"]),
    ]
    return "\n".join(lines) + "\n"


def _open_loop_markdown(report: dict[str, Any]) -> str:
    parameters = report["parameters"]
    server, client = report["server_assignment_ms"], report["client_create_ms"]
    per_hour = parameters["rate"] * 3600 / parameters["tenants"]
    lines = [
        "| load | duration | calls | server-side assignment p50 / p99 / max | client POST /calls p50 / p99 "
        "| errors | invariants |",
        "|---|---|---|---|---|---|---|",
        f"| {parameters['tenants']} tenants x {per_hour:,.0f} calls/hour x {parameters['agents']} agents "
        f"| {parameters['duration']:g} s | {report['calls_created']:,} "
        f"| {_number(server.get('p50'), 2)} / {_number(server.get('p99'), 2)} / {_number(server.get('max'), 2)} ms "
        f"| {_number(client.get('p50'), 2)} / {_number(client.get('p99'), 2)} ms "
        f"| {report['errors']} | {'ok' if report['invariants']['ok'] else 'broken'} |",
    ]
    if report.get("targets"):
        lines += ["", *_targets_table(report["targets"])]
    return "\n".join(lines) + "\n"
