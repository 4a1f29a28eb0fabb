"""Redis killed (kill -9) and restarted empty under live traffic; a web worker SIGKILLed while it
serves ``POST /calls``, and the client's retry with the same ``Idempotency-Key``."""

from __future__ import annotations

import os
import signal
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django_tenants.utils import schema_context

from calls.models import Call
from tests.faults.conftest import assert_invariants, outage_window, report_outage
from tests.processes import (
    Reply,
    TcpProxy,
    Traffic,
    child_env,
    database_url,
    http_request,
    start_web,
    unanswered,
    wait_for,
)

pytestmark = [pytest.mark.fault]


class RedisFaultTests:
    def test_redis_killed_and_restarted_empty(
        self, alpha: Any, agents: list[Any], tmp_path: Path, processes: list[Any], redis_server: Any, engine_on: Any
    ) -> None:
        engine_on(redis_server.url())
        web = start_web(tmp_path, env=child_env(REDIS_URL=redis_server.url(), CELERY_BROKER_URL=redis_server.url(1)))
        processes.append(web)
        traffic = Traffic(port=web.port, key=alpha.api_key).start()
        processes.append(traffic)
        wait_for(lambda: traffic.ok_since(0), seconds=60, what="traffic flowing before the fault")

        redis_server.kill()
        fault_started = time.monotonic()
        wait_for(
            lambda: any(a[3] and a[3].get("code") == "engine_unavailable" for a in traffic.since(fault_started)),
            seconds=60,
            what="a 503 engine_unavailable while Redis is down",
        )
        health = web.request("GET", "/health", timeout=20)
        assert health.status == 503 and "redis" in health.body["down"], health.body
        problems = lambda: [a for a in traffic.since(fault_started) if a[3] and "code" in a[3]]  # noqa: E731
        wait_for(lambda: len(problems()) >= 4, seconds=60, what="several 503s")
        redis_server.start()  # empty: no keys, no scripts
        fault_ended = time.monotonic()
        wait_for(lambda: traffic.ok_since(fault_ended), seconds=60, what="calls created again after Redis returned")
        traffic.stop()

        during = traffic.since(fault_started)
        assert not unanswered(during), unanswered(during)[:3]
        for _, _, status, body in during:
            if status >= 500 and body and "code" in body:
                assert status == 503 and body["code"] == "engine_unavailable", body
        assert all(a[2] != 500 for a in traffic.answers)
        window, recovery = outage_window(traffic, fault_ended=fault_ended)
        report_outage("Redis kill -9, restarted empty", unavailable_seconds=window, recovery_seconds=recovery)
        assert_invariants(alpha.schema_name, traffic)


class WebWorkerKilledTests:
    def test_a_retry_after_the_web_worker_died_mid_request_gives_one_call(
        self, alpha: Any, agents: list[Any], tmp_path: Path, processes: list[Any]
    ) -> None:
        database = settings.DATABASES["default"]
        proxy = TcpProxy(database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432))
        processes.append(proxy)
        # One worker, and a statement timeout long enough for the kill to land mid-request.
        web = start_web(
            tmp_path,
            workers=1,
            env=child_env(
                DATABASE_URL=database_url(host="127.0.0.1", port=proxy.port), DB_STATEMENT_TIMEOUT_MS="20000"
            ),
        )
        processes.append(web)
        body = {"phone_number": "+34600555000", "call_type": "llamada_tipo_1"}
        headers = {"Idempotency-Key": "killed-mid-request"}
        assert web.request("GET", "/agents", key=alpha.api_key).status == 200  # the worker is up and connected

        # The request hangs at the database (the proxy passes nothing) while its worker is killed.
        proxy.set_mode("blackhole")
        first: list[Reply] = []
        thread = threading.Thread(
            target=lambda: first.append(
                http_request(web.port, "POST", "/calls", key=alpha.api_key, body=body, headers=headers, timeout=60)
            )
        )
        thread.start()
        time.sleep(1.0)  # the request is in flight (it cannot finish: nothing reaches Postgres)
        (worker_pid,) = web.worker_pids()
        os.kill(worker_pid, signal.SIGKILL)
        thread.join(timeout=60)
        assert first and first[0].status == 0, first  # the client saw the connection drop, no answer
        proxy.set_mode("forward")

        killed = time.monotonic()
        retry = wait_for(
            lambda: (
                (r := web.request("POST", "/calls", key=alpha.api_key, body=body, headers=headers)).status in (201, 202)
                and r
            ),
            seconds=60,
            what="the retry answered by the new worker",
        )
        report_outage(
            "web worker SIGKILL mid-request", unavailable_seconds=None, recovery_seconds=time.monotonic() - killed
        )
        again = web.request("POST", "/calls", key=alpha.api_key, body=body, headers=headers)
        assert again.status == retry.status and again.body["id"] == retry.body["id"]
        assert again.header("Idempotent-Replayed") == "true"
        with schema_context(alpha.schema_name):
            assert Call.objects.filter(idempotency_key="killed-mid-request").count() == 1

        # And under traffic: workers killed at whatever point they are, clients retrying.
        traffic = Traffic(port=web.port, key=alpha.api_key, threads=2).start()
        processes.append(traffic)
        for _ in range(3):
            moment = time.monotonic()
            wait_for(partial(traffic.ok_since, moment), seconds=60, what="traffic flowing")
            pids = wait_for(web.worker_pids, seconds=30, what="a web worker")
            os.kill(pids[0], signal.SIGKILL)
        after_kills = time.monotonic()
        wait_for(lambda: traffic.ok_since(after_kills), seconds=60, what="traffic flowing after the kills")
        traffic.stop()
        assert_invariants(alpha.schema_name, traffic)
