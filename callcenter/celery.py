"""The Celery application. Tasks take ``schema_name`` first and run inside that tenant's schema.

Workers and beat write heartbeats to Redis (``assignment.engine.heartbeat_write``) so that
``/health``, ``/system/status`` and the compose healthchecks see them without a blocking ping:

- a worker, from a bootstep on the worker's own timer, every ``HEARTBEAT_SECONDS`` (a worker whose
  event loop is stuck stops writing);
- beat, from its scheduler's tick (a beat that stopped scheduling stops writing).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from celery import Celery, bootsteps
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callcenter.settings")

logger = logging.getLogger(__name__)

app = Celery("callcenter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _beat(process: str) -> None:
    from assignment import engine

    try:
        engine.heartbeat_write(process=process, now=time.time())
    except Exception as exc:  # Redis away: the next beat tries again; /health reports Redis itself
        logger.debug("heartbeat of %s not written: %s", process, exc)


class WorkerHeartbeat(bootsteps.StartStopStep):
    requires = ("celery.worker.components:Timer",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timer_entry: Any = None

    def start(self, parent: Any) -> None:
        from callcenter.health import HEARTBEAT_SECONDS

        process = f"worker:{parent.hostname}"
        _beat(process)
        self.timer_entry = parent.timer.call_repeatedly(HEARTBEAT_SECONDS, _beat, (process,))

    def stop(self, parent: Any) -> None:
        if self.timer_entry is not None:
            parent.timer.cancel(self.timer_entry)
            self.timer_entry = None
        from assignment import engine

        try:
            engine.heartbeat_forget(process=f"worker:{parent.hostname}")
        except Exception as exc:  # stopping anyway; the entry simply ages out
            logger.debug("heartbeat not removed: %s", exc)


app.steps["worker"].add(WorkerHeartbeat)


class HeartbeatScheduler(PersistentScheduler):
    """Celery's default scheduler, plus a heartbeat at most every ``HEARTBEAT_SECONDS``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._last_heartbeat = 0.0
        self._process = f"beat:{socket.gethostname()}"
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        from callcenter.health import HEARTBEAT_SECONDS

        now = time.monotonic()
        if now - self._last_heartbeat >= HEARTBEAT_SECONDS:
            self._last_heartbeat = now
            _beat(self._process)
        return float(super().tick(*args, **kwargs))
