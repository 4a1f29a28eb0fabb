"""The Celery worker SIGKILLed (the supervisor starts it again) and the broker going away twice:
in both, queued tasks still run afterwards, with no one restarting anything by hand."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from django_tenants.utils import schema_context

from assignment.models import RoutingSettings
from calls.models import Call
from routing.services import routing_config_forget
from tests.faults.conftest import assert_invariants, report_outage
from tests.processes import Child, RedisServer, Traffic, child_env, start_worker, wait_for

pytestmark = [pytest.mark.fault, pytest.mark.worker]

# Long enough for the worker to back off a few times (2, 4, 6 s): shorter outages hide the failure.
OUTAGE_SECONDS = 15


def _short_wait_limit(schema_name: str) -> None:
    with schema_context(schema_name):
        RoutingSettings.objects.update(max_wait_seconds=1)
        routing_config_forget()


def _swept(beta: Any, broker: Celery, web: Any) -> float:
    """Queue a call in beta (no agents there), have the worker sweep it, and return how long after
    the task was sent the call was ABANDONED."""
    reply = web.request(
        "POST", "/calls", key=beta.api_key, body={"phone_number": "+34600000001", "call_type": "llamada_tipo_1"}
    )
    assert reply.status == 202, reply.body
    call_id = reply.body["id"]
    time.sleep(1.1)  # past max_wait_seconds (1 s), so the next sweep abandons it
    sent = time.monotonic()

    def abandoned() -> bool:
        broker.send_task("assignment.tasks.sweep_tenant_task", args=[beta.schema_name])
        with schema_context(beta.schema_name):
            return Call.objects.filter(id=call_id, status=Call.Status.ABANDONED).exists()

    wait_for(abandoned, seconds=120, every=1.0, what="the worker sweeping again")
    return time.monotonic() - sent


def _celery_pid(worker: Child) -> int | None:
    """The Celery process under the supervisor (None while it is being started again)."""
    assert worker.process is not None
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(worker.process.pid)], capture_output=True, text=True)
    pids = [int(pid) for pid in out.stdout.split()]
    return pids[0] if pids else None


class WorkerFaultTests:
    def test_a_sigkilled_worker_is_started_again_and_the_queued_work_runs(
        self, alpha: Any, beta: Any, web: Any, tmp_path: Path, processes: list[Any]
    ) -> None:
        _short_wait_limit(beta.schema_name)
        from django.conf import settings

        # set_as_current=False: the project's shared tasks must keep publishing through the project's app.
        broker = Celery(broker=settings.CELERY_BROKER_URL, set_as_current=False)
        broker.control.purge()  # tasks left by earlier tests must not delay this test's
        worker = start_worker(tmp_path)
        processes.append(worker)
        traffic = Traffic(port=web.port, key=alpha.api_key).start()
        processes.append(traffic)
        _swept(beta, broker, web)

        first = wait_for(lambda: _celery_pid(worker), seconds=30, what="the Celery process")
        os.kill(first, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: _celery_pid(worker) not in (None, first), seconds=60, what=f"a new worker: {worker.log()}")
        took = _swept(beta, broker, web)
        report_outage("worker SIGKILL", unavailable_seconds=0.0, recovery_seconds=time.monotonic() - killed - took)
        assert worker.alive(), worker.log()
        traffic.stop()
        assert_invariants(alpha.schema_name, traffic)

    def test_the_worker_survives_broker_outages_on_its_own(
        self, alpha: Any, beta: Any, web: Any, tmp_path: Path, processes: list[Any]
    ) -> None:
        _short_wait_limit(beta.schema_name)
        broker_server = RedisServer(tmp_path).start()
        processes.append(broker_server)
        broker = Celery(broker=broker_server.url(), set_as_current=False)
        broker.conf.broker_connection_retry_on_startup = True
        worker = start_worker(
            tmp_path,
            env=child_env(
                CELERY_BROKER_URL=broker_server.url(),
                WORKER_CHECK_SECONDS="0.5",
                WORKER_STALL_SECONDS="5",
                LOG_LEVEL="INFO",
            ),
        )
        processes.append(worker)
        traffic = Traffic(port=web.port, key=alpha.api_key).start()
        processes.append(traffic)
        _swept(beta, broker, web)
        for outage in (1, 2):
            broker_server.kill()
            time.sleep(OUTAGE_SECONDS)  # the worker notices, backs off, keeps retrying
            broker_server.start()
            back = time.monotonic()
            took = _swept(beta, broker, web)
            report_outage(
                f"broker outage {outage}", unavailable_seconds=None, recovery_seconds=time.monotonic() - back - took
            )
            assert worker.alive(), worker.log()
        traffic.stop()
        assert_invariants(alpha.schema_name, traffic)
