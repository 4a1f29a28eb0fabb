"""Postgres refused and Postgres black-holed, through a TCP proxy the test controls, under live
traffic: the API answers 503 ``database_unavailable`` with ``Retry-After`` (never a 500, never a
hang), ``/health`` says so, and service comes back by itself when the database does."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.faults.conftest import assert_invariants, outage_window, report_outage
from tests.processes import TcpProxy, Traffic, child_env, database_url, start_web, unanswered, wait_for

pytestmark = [pytest.mark.fault]


def _web_behind_proxy(tmp_path: Path, processes: list[Any]) -> tuple[TcpProxy, Any]:
    database = settings.DATABASES["default"]
    if (database["HOST"] or "").startswith("/"):
        pytest.fail("the Postgres fault tests need Postgres on TCP (DATABASE_URL with a host)")
    proxy = TcpProxy(database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432))
    processes.append(proxy)
    web = start_web(tmp_path, env=child_env(DATABASE_URL=database_url(host="127.0.0.1", port=proxy.port)))
    processes.append(web)
    return proxy, web


def _problems(answers: list[Any]) -> list[Any]:
    return [answer for answer in answers if answer[2] >= 500 and answer[3] and "code" in answer[3]]


class PostgresFaultTests:
    @pytest.mark.parametrize("mode", ["refuse", "blackhole"])
    def test_it_answers_503_with_retry_after_and_recovers_by_itself(
        self, mode: str, alpha: Any, agents: list[Any], tmp_path: Path, processes: list[Any]
    ) -> None:
        proxy, web = _web_behind_proxy(tmp_path, processes)
        traffic = Traffic(port=web.port, key=alpha.api_key).start()
        processes.append(traffic)
        wait_for(lambda: traffic.ok_since(0), seconds=60, what="traffic flowing before the fault")

        proxy.set_mode(mode)
        fault_started = time.monotonic()
        wait_for(
            lambda: any(a[3] and a[3].get("code") == "database_unavailable" for a in traffic.since(fault_started)),
            seconds=60,
            what=f"a 503 database_unavailable while Postgres is {mode}d",
        )
        health = web.request("GET", "/health", timeout=20)
        assert health.status == 503, (health.status, health.body)
        assert "database" in health.body["down"], health.body
        # Keep the fault a few more seconds so several requests meet it.
        wait_for(lambda: len(_problems(traffic.since(fault_started))) >= 4, seconds=60, what="several 503s")

        proxy.set_mode("forward")
        fault_ended = time.monotonic()
        wait_for(lambda: traffic.ok_since(fault_ended), seconds=60, what="calls created again after the fault")
        assert web.request("GET", "/health", timeout=20).status in (200, 503)  # workers may be absent: degraded
        traffic.stop()

        during = traffic.since(fault_started)
        assert not unanswered(during), unanswered(during)[:3]  # no hang until the client gave up
        errors = [a for a in during if a[2] >= 500 and not (a[2] == 503 and a[3] and a[3].get("status") == "SATURATED")]
        for _, _, status, body in errors:
            assert status == 503 and body and body["code"] == "database_unavailable", (status, body)
        assert all(a[2] != 500 for a in traffic.answers), [a for a in traffic.answers if a[2] == 500][:3]
        retry_after = web.request("GET", "/config", key=alpha.api_key)
        assert retry_after.status == 200, retry_after.body
        window, recovery = outage_window(traffic, fault_ended=fault_ended)
        report_outage(f"Postgres {mode}", unavailable_seconds=window, recovery_seconds=recovery)
        assert_invariants(alpha.schema_name, traffic)

    def test_every_503_carries_retry_after(self, alpha: Any, agents: list[Any], tmp_path: Path, processes: list[Any]):
        proxy, web = _web_behind_proxy(tmp_path, processes)
        assert web.request("GET", "/config", key=alpha.api_key).status == 200
        proxy.set_mode("refuse")
        for method, path, body in [
            ("GET", "/config", None),
            ("GET", "/agents", None),
            ("POST", "/calls", {"phone_number": "+34600111222", "call_type": "llamada_tipo_1"}),
        ]:
            reply = web.request(method, path, key=alpha.api_key, body=body, timeout=20)
            assert reply.status == 503, (path, reply.status, reply.body)
            assert reply.header("Content-Type").startswith("application/problem+json")
            assert reply.body["code"] == "database_unavailable"
            assert int(reply.header("Retry-After")) >= 1
        proxy.set_mode("forward")
        wait_for(lambda: web.request("GET", "/config", key=alpha.api_key).status == 200, seconds=60, what="recovery")
        # After the outage no worker's first request fails: each reconnects before using its connection.
        for _ in range(6):
            assert web.request("GET", "/agents", key=alpha.api_key).status == 200
