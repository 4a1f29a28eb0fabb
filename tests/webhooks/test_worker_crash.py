"""At least once: a worker killed in the middle of a delivery loses nothing. The message stays
held only until its lease ends; the tick then queues it again and another worker delivers it,
with the same webhook-id, so the receiver can drop the duplicate."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django_tenants.utils import schema_context

from tests.conftest import BASE_DIR, WorkerProcess, service_env
from tests.webhooks.receiver import http_receiver, wait_until
from webhooks.models import WebhookMessage
from webhooks.services import webhooks_tick

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("allow_private")]


def _start_worker(tmp_path: Path) -> tuple[WorkerProcess, Any]:
    from callcenter.celery import app

    env = service_env()
    env.update(
        CELERY_BROKER_URL=app.conf.broker_url,
        WEBHOOKS_ALLOW_PRIVATE="true",
        WEBHOOKS_TIMEOUT_SECONDS="2",  # its lease: 3 x 2 + 5 = 11 s
        WEBHOOKS_RETRY_SCHEDULE="0,0,0",
    )
    name = f"test-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / f"{name}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "callcenter", "worker", "--pool=solo", "-n", f"{name}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO", "--queues=webhooks"],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return WorkerProcess(process=process, log_path=log_path), log


class WorkerCrashTests:
    def test_a_worker_killed_mid_delivery_loses_nothing(self, alpha: Any, tmp_path: Path) -> None:
        from callcenter.celery import app

        app.control.purge()
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge("webhooks")  # type: ignore[attr-defined]
        started: list[tuple[WorkerProcess, Any]] = []
        try:
            with http_receiver([("hang", 60, 200), 200]) as receiver:
                first, log = _start_worker(tmp_path)
                started.append((first, log))
                endpoint = alpha.client().post("/webhooks", {"url": receiver.url}).json()
                assert alpha.client().post(f"/webhooks/{endpoint['id']}/test").status_code == 202
                wait_until(lambda: receiver.received, seconds=60, what=f"the first POST: {first.log()}")
                first.kill()  # in the middle of the POST: the receiver has not answered
                with schema_context(alpha.schema_name):
                    [message] = WebhookMessage.objects.all()
                    assert message.status == WebhookMessage.Status.PENDING and message.attempts == 0

                second, log = _start_worker(tmp_path)
                started.append((second, log))

                def delivered() -> bool:
                    with schema_context(alpha.schema_name):
                        webhooks_tick(schema_name=alpha.schema_name)  # what beat does every second
                        message.refresh_from_db()
                    if message.status != WebhookMessage.Status.SUCCEEDED:
                        time.sleep(0.5)
                        return False
                    return True

                wait_until(delivered, seconds=90, what=f"the redelivery: {second.log()}")
                ids = [r.headers["webhook-id"] for r in receiver.received]
                assert len(ids) == 2 and ids[0] == ids[1] == str(message.event_id)
                with schema_context(alpha.schema_name):
                    assert [a.succeeded for a in message.attempt_log.all()] == [True]
        finally:
            for worker, log in started:
                if worker.process.poll() is None:
                    worker.process.terminate()
                    try:
                        worker.process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        worker.kill()
                log.close()
