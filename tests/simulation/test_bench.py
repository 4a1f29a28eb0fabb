"""``manage.py bench``: the floor comparison (closed loop, alternating servers), the reference preset
and the Markdown tables of its reports.

The load is driven against a small lifecycle stub (the two requests, answered at once, with an error
every so often when asked) and against the product's own web server. Nothing here asserts how fast
anything is: the numbers are checked for their arithmetic, not their size."""

from __future__ import annotations

import json
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from calls.models import Call
from simulation import loadgen
from simulation.management.commands import bench


class LifecycleStub:
    """``POST /calls`` (201 with a new id, or 500 for every ``fail_every``-th) and ``POST
    /calls/{id}/complete`` (200 for an open call, else 404); ``GET /calls`` lists nothing (the
    product's drain asks it). Counts what it answered."""

    def __init__(self, *, fail_every: int = 0, one_at_a_time: bool = False) -> None:
        self.fail_every = fail_every
        self.lock = threading.Lock()
        self.creates = 0
        self.failures = 0
        self.completed = 0
        self.open: set[str] = set()
        self.keys: set[str] = set()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            # One at a time: like a gunicorn sync worker, one connection per answer, and an idle
            # connection holds the server until it closes.
            protocol_version = "HTTP/1.0" if one_at_a_time else "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer(200, {"count": 0, "results": []})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with stub.lock:
                    stub.keys.add(self.headers.get("Authorization", ""))
                    if self.path == "/calls":
                        stub.creates += 1
                        if stub.fail_every and stub.creates % stub.fail_every == 0:
                            stub.failures += 1
                            answer: tuple[int, dict[str, Any]] = (500, {"code": "boom"})
                        else:
                            call_id = str(uuid.uuid4())
                            stub.open.add(call_id)
                            answer = (201, {"id": call_id, "status": "ASSIGNED", "assignment_time_ms": 1.0})
                    else:
                        match = re.fullmatch(r"/calls/([0-9a-f-]+)/complete", self.path)
                        if match and match.group(1) in stub.open:
                            stub.open.discard(match.group(1))
                            stub.completed += 1
                            answer = (200, {"id": match.group(1), "status": "COMPLETED"})
                        else:
                            answer = (404, {"code": "not_found"})
                self._answer(*answer)

        self.server = (HTTPServer if one_at_a_time else ThreadingHTTPServer)(("127.0.0.1", 0), Handler)
        if isinstance(self.server, ThreadingHTTPServer):
            self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LifecycleStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[LifecycleStub]:
    with LifecycleStub() as server:
        yield server


@pytest.fixture
def failing_stub() -> Iterator[LifecycleStub]:
    with LifecycleStub(fail_every=4) as server:
        yield server


@pytest.fixture
def keys_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bench keeps the keys it issues in a file: the test's own, not the project's."""
    path = tmp_path / "bench-keys.json"
    monkeypatch.setattr(bench, "KEYS_FILE", path)
    return path


def _run(status_counts: dict[str, int], **fields: Any) -> dict[str, Any]:
    raw = {
        "threads": [
            {"lifecycles": 30, "created": 31, "seconds": 2.0, "pending": "", "inflight": "", "stopped": True},
            {"lifecycles": 10, "created": 11, "seconds": 1.0, "pending": "abc-1", "inflight": "", "stopped": False},
            {"lifecycles": 0, "created": 0, "seconds": 0.0, "pending": "", "inflight": "create", "stopped": False},
        ],
        "statuses": status_counts,
        "socket_errors": {"connect": 1, "read": 0, "write": 0, "timeout": 2},
        "requests": 80,
        "duration_s": 3.0,
        "latency_ms": {"mean": 4.0, "p50": 3.0, "p90": 6.0, "p99": 9.5, "max": 20.0},
        "error_samples": ["create 500 boom"],
    }
    raw.update(fields)
    return raw


def _result(side: str, round: int, connections: int, rate: float, p99: float) -> loadgen.RunResult:
    return loadgen.RunResult(
        side=side,
        round=round,
        connections=connections,
        client="wrk",
        calls_per_second=rate,
        lifecycles=int(rate * 20),
        requests=int(rate * 40),
        seconds=20.0,
        latency_ms={"mean": p99 / 3, "p50": p99 / 4, "p90": p99 / 2, "p99": p99, "max": p99 * 2},
        statuses={"200": 1, "201": 1},
        socket_errors={"connect": 0, "read": 0, "write": 0, "timeout": 0},
        errors=0,
    )


class ArithmeticTests:
    def test_a_run_adds_each_clients_own_rate_and_counts_every_error(self):
        run = loadgen.run_result(
            _run({"201": 41, "200": 40, "500": 3, "404": 1, "202": 2}),
            side="product",
            round=2,
            connections=3,
            client="wrk",
        )

        assert run.calls_per_second == 25.0  # 30 / 2 s + 10 / 1 s; a client with no time adds nothing
        assert run.lifecycles == 40
        assert run.errors == 3 + 1 + 1 + 2  # 500s, 404, connect and timeout errors; 2xx never
        assert run.left_open == ["abc-1"]
        assert run.lost_in_flight == 1
        assert run.latency_ms["p99"] == 9.5
        assert run.statuses == {"200": 40, "201": 41, "202": 2, "404": 1, "500": 3}

    def test_the_ratios_are_of_the_means_product_over_floor(self):
        runs = [
            _result("floor", 1, 4, 90.0, 10.0),
            _result("product", 1, 4, 51.0, 12.0),
            _result("floor", 2, 4, 78.0, 12.0),
            _result("product", 2, 4, 63.0, 18.0),
            _result("floor", 3, 4, 102.0, 14.0),
            _result("product", 3, 4, 66.0, 24.0),
            _result("floor", 1, 16, 200.0, 50.0),
            _result("product", 1, 16, 180.0, 55.0),
        ]
        runs[1].errors, runs[6].cleanup_errors = 2, 1

        summary = loadgen.compare_summary(runs)

        assert [row["connections"] for row in summary] == [4, 16]
        four, sixteen = summary
        assert four["floor"]["calls_per_second"] == [90.0, 78.0, 102.0]
        assert four["product"]["mean_calls_per_second"] == 60.0
        assert four["ratio"] == pytest.approx(60 / 90, abs=1e-3)
        assert four["p99_ratio"] == pytest.approx(18 / 12, abs=1e-3)
        assert (four["product"]["errors"], sixteen["floor"]["errors"]) == (2, 1)
        assert sixteen["ratio"] == 0.9

        targets = {t["target"]: t for t in loadgen.compare_targets(summary, errors=3, invariants_ok=True)}
        assert targets["throughput product/floor at 4 connections >= 0.8"]["met"] is False
        assert targets["throughput product/floor at 16 connections >= 0.8"]["met"] is True
        assert targets["p99 per request product/floor at 4 connections <= 1.3"]["met"] is False
        assert targets["no errors"] == {"target": "no errors", "value": 3, "limit": 0, "met": False}

    def test_only_the_connection_counts_measured_are_judged(self):
        summary = loadgen.compare_summary([_result("floor", 1, 1, 10.0, 5.0), _result("product", 1, 1, 9.0, 5.0)])

        names = [t["target"] for t in loadgen.compare_targets(summary, errors=0, invariants_ok=False)]

        assert not [name for name in names if "connections" in name]
        assert loadgen.compare_targets(summary, errors=0, invariants_ok=False)[-1]["met"] is False

    def test_the_reference_targets_are_strict_bounds(self):
        report = {
            "server_assignment_ms": {"p99": 5.0},
            "client_create_ms": {"p99": 14.9},
            "errors": 0,
            "invariants": {"ok": True},
        }

        met = [t["met"] for t in loadgen.reference_targets(report)]

        assert met == [False, True, True, True]  # 5.0 ms is not under 5 ms

    @pytest.mark.parametrize("text", ["", "4,x", "0,4", "-1"])
    def test_connection_counts_are_checked(self, text):
        with pytest.raises(ValueError):
            loadgen.parse_connections(text)
        assert loadgen.parse_connections(" 1, 4,16") == [1, 4, 16]


class MarkdownTests:
    def test_a_compare_report_becomes_the_docs_table(self, tmp_path: Path):
        runs = [_result(side, r, 4, rate, p99) for side, r, rate, p99 in
                [("floor", 1, 100.0, 10.0), ("product", 1, 80.0, 12.0), ("floor", 2, 120.0, 14.0),
                 ("product", 2, 88.0, 13.0)]]  # fmt: skip
        summary = loadgen.compare_summary(runs)
        report = {
            "mode": "compare",
            "client": "wrk",
            "parameters": {"rounds": 2, "seconds": 20.0, "agents": 50},
            "summary": summary,
            "targets": loadgen.compare_targets(summary, errors=0, invariants_ok=True),
        }
        path = tmp_path / "compare.json"
        path.write_text(json.dumps(report))
        out = StringIO()

        call_command("bench", "--table", str(path), stdout=out)

        table = out.getvalue()
        assert "| 4 | 100, 120 | 80, 88 | 0.76 | 10.0-14.0 ms / 12.0-13.0 ms | 1.04 | 0 / 0 |" in table
        assert "| throughput product/floor at 4 connections >= 0.8 | 0.764 | **no** |" in table
        assert "| p99 per request product/floor at 4 connections <= 1.3 | 1.042 | yes |" in table

    def test_an_open_loop_report_becomes_a_table_with_its_targets(self):
        report = {
            "mode": "open_loop",
            "parameters": {"tenants": 10, "agents": 50, "rate": 10_000 / 3600, "duration": 120.0},
            "calls_created": 333,
            "errors": 0,
            "invariants": {"ok": True},
            "server_assignment_ms": {"p50": 2.5, "p99": 4.25, "max": 9.0},
            "client_create_ms": {"p50": 6.0, "p99": 16.5},
        }
        report["targets"] = loadgen.reference_targets(report)

        table = loadgen.markdown(report)

        assert "| 10 tenants x 1,000 calls/hour x 50 agents | 120 s | 333 | 2.50 / 4.25 / 9.00 ms |" in table
        assert "| 6.00 / 16.50 ms | 0 | ok |" in table
        assert "| client p99 of POST /calls < 15 ms | 16.5 | **no** |" in table

    def test_something_else_is_refused_in_one_sentence(self, tmp_path: Path):
        path = tmp_path / "other.json"
        path.write_text(json.dumps({"claim_ms": {}}))

        with pytest.raises(CommandError, match="cannot render"):
            call_command("bench", "--table", str(path))


def _closed_loop(client: str, stub: LifecycleStub) -> dict[str, Any]:
    if client == "wrk":
        if not loadgen.wrk_path():
            pytest.skip("wrk is not installed (CI installs it: .ci/run)")
        return loadgen.run_wrk(stub.url, connections=2, seconds=0.5, key="cc_test_key")
    return loadgen.run_python(stub.url, connections=2, seconds=0.5, key="cc_test_key")


@pytest.mark.parametrize("client", ["python", "wrk"])
class ClosedLoopTests:
    def test_every_call_created_is_completed_before_the_client_stops(self, client, stub):
        run = loadgen.run_result(_closed_loop(client, stub), side="floor", round=1, connections=2, client=client)

        assert run.errors == 0 and run.lifecycles > 0
        assert run.lifecycles == stub.completed == stub.creates
        assert stub.open == set() and run.left_open == [] and run.lost_in_flight == 0
        assert run.statuses == {"200": stub.completed, "201": stub.creates}
        assert run.requests == 2 * stub.creates
        assert stub.keys == {"Bearer cc_test_key"}

    def test_each_error_answer_is_counted_once(self, client, failing_stub):
        raw = _closed_loop(client, failing_stub)
        run = loadgen.run_result(raw, side="product", round=1, connections=2, client=client)

        assert failing_stub.failures > 0
        assert run.errors == failing_stub.failures == run.statuses["500"]
        assert any("500" in sample for sample in run.error_samples)
        assert failing_stub.open == set()


def test_a_wrk_thread_that_stopped_holds_no_connection_the_server_must_serve():
    """Against a server that serves one connection at a time and closes it after each answer, the
    connection wrk opens after a stopped thread's last answer must not go to the server: it would
    hold it, and the threads still finishing their call would wait for ever."""
    if not loadgen.wrk_path():
        pytest.skip("wrk is not installed (CI installs it: .ci/run)")
    with LifecycleStub(one_at_a_time=True) as server:
        raw = loadgen.run_wrk(server.url, connections=4, seconds=0.5, key="k")
        run = loadgen.run_result(raw, side="floor", round=1, connections=4, client="wrk")

        assert all(thread["stopped"] for thread in raw["threads"]), raw["threads"]
        assert run.left_open == [] and run.lost_in_flight == 0 and run.errors == 0
        assert server.open == set() and server.completed == run.lifecycles > 0


class CompareCommandTests:
    def test_it_drives_both_urls_alternately_and_writes_every_round(self, alpha, stub, keys_file, tmp_path):
        with LifecycleStub() as product:
            out, report_path = StringIO(), tmp_path / "out.json"

            call_command(
                "bench", "--compare", stub.url, "--url", product.url, "--connections", "1,2", "--rounds", "2",
                "--seconds", "0.3", "--warmup", "0.2", "--tenant", "alpha", "--agents", "3", "--client", "python",
                "--json", str(report_path), stdout=out,
            )  # fmt: skip

        report = json.loads(report_path.read_text())
        assert report["mode"] == "compare" and report["client"] == "python"
        assert [(r["connections"], r["round"], r["side"]) for r in report["runs"]] == [
            (c, r, side) for c in (1, 2) for r in (1, 2) for side in ("floor", "product")
        ]
        assert [w["side"] for w in report["warmup"]] == ["floor", "product"]
        assert report["errors"] == 0 and report["invariants"]["ok"]
        for row in report["summary"]:
            mine = [r for r in report["runs"] if r["connections"] == row["connections"]]
            floor = [r["calls_per_second"] for r in mine if r["side"] == "floor"]
            product_rates = [r["calls_per_second"] for r in mine if r["side"] == "product"]
            assert row["floor"]["calls_per_second"] == floor
            assert row["ratio"] == pytest.approx(sum(product_rates) / sum(floor), abs=1e-3)
        assert stub.completed > 0 and product.completed > 0 and not stub.open and not product.open
        assert json.loads(keys_file.read_text())["alpha"].startswith("cc_")
        printed = out.getvalue()
        assert printed.count("round 2 product") == 2 and "ratio" in printed and "PASS  no errors: 0" in printed

    def test_errors_are_reported_and_fail_the_command_after_writing_the_report(
        self, alpha, stub, failing_stub, keys_file, tmp_path
    ):
        report_path = tmp_path / "out.json"

        with pytest.raises(CommandError, match="errors"):
            call_command(
                "bench", "--compare", stub.url, "--url", failing_stub.url, "--connections", "2", "--rounds", "1",
                "--seconds", "0.3", "--warmup", "0", "--tenant", "alpha", "--agents", "2", "--client", "python",
                "--json", str(report_path), stdout=StringIO(),
            )  # fmt: skip

        report = json.loads(report_path.read_text())
        assert report["errors"] == failing_stub.failures > 0
        assert report["summary"][0]["product"]["errors"] == failing_stub.failures
        assert report["summary"][0]["floor"]["errors"] == 0
        assert {"target": "no errors", "value": failing_stub.failures, "limit": 0, "met": False} in report["targets"]

    def test_it_starts_no_server_and_says_so_when_one_is_missing(self, alpha, stub, keys_file):
        with pytest.raises(CommandError, match=re.escape("nothing answers at http://127.0.0.1:9: start the server")):
            call_command("bench", "--compare", stub.url, "--url", "http://127.0.0.1:9", "--tenant", "alpha")

    def test_without_wrk_it_falls_back_to_python_with_a_note(self, alpha, stub, keys_file, monkeypatch):
        monkeypatch.setattr(loadgen, "wrk_path", lambda: None)
        out, err = StringIO(), StringIO()

        call_command(
            "bench", "--compare", stub.url, "--url", stub.url, "--connections", "1", "--rounds", "1",
            "--seconds", "0.2", "--warmup", "0", "--tenant", "alpha", "--agents", "1", stdout=out, stderr=err,
        )  # fmt: skip

        assert "wrk is not installed" in err.getvalue() and "Closed loop, python" in out.getvalue()
        with pytest.raises(CommandError, match="wrk is not installed"):
            call_command("bench", "--compare", stub.url, "--url", stub.url, "--client", "wrk", "--tenant", "alpha")

    def test_against_the_product_every_call_ends_and_the_invariants_hold(self, alpha, web_server, keys_file, tmp_path):
        url = f"http://127.0.0.1:{web_server.port}"  # type: ignore[attr-defined]
        report_path = tmp_path / "out.json"

        call_command(
            "bench", "--compare", url, "--url", url, "--connections", "1,2", "--rounds", "1", "--seconds", "0.5",
            "--warmup", "0", "--tenant", "alpha", "--agents", "3", "--client", "python", "--json", str(report_path),
            stdout=StringIO(),
        )  # fmt: skip

        report = json.loads(report_path.read_text())
        assert report["errors"] == 0 and report["invariants"]["ok"], report
        assert all(run["lifecycles"] > 0 for run in report["runs"])
        created = sum(run["statuses"].get("201", 0) + run["statuses"].get("202", 0) for run in report["runs"])
        with schema_context(alpha.schema_name):
            assert Call.objects.count() == created
            assert set(Call.objects.values_list("status", flat=True)) == {Call.Status.COMPLETED}


class ReferencePresetTests:
    def test_it_starts_no_server_and_says_so(self):
        with pytest.raises(CommandError, match=re.escape("nothing answers at http://127.0.0.1:9: start the server")):
            call_command("bench", "--preset", "reference", "--url", "http://127.0.0.1:9")

    def test_the_preset_fixes_the_load(self):
        with pytest.raises(CommandError, match="drop --rate"):
            call_command("bench", "--preset", "reference", "--rate", "5")
        with pytest.raises(CommandError, match="drop --tenants"):
            call_command("bench", "--preset", "reference", "--tenants", "3")


def test_the_lifecycle_script_is_shipped_next_to_the_code():
    assert loadgen.LIFECYCLE_SCRIPT.is_file()
    assert "BENCH_RESULT" in loadgen.LIFECYCLE_SCRIPT.read_text()
    assert shutil.which("wrk") is None or loadgen.wrk_path() is not None
