"""The Celery worker, kept alive through broker outages: ``python -m callcenter.worker [options]``.

Options are ``celery worker``'s (``--concurrency 2``, ``--loglevel INFO``, ``-n name@host``).

Why not plain ``celery worker``: with the Redis broker (celery/kombu 5.7, redis-py 8) a worker does
not always come back after Redis goes away. It may exit ("Unrecoverable error: AttributeError
'NoneType' object has no attribute ..."), or reconnect once and, at the next outage, stop consuming
while its process stays up. Nothing then runs the sweep until a person restarts it. So:

- the worker runs without gossip, mingle and heartbeat events (the known trigger of the stuck
  reconnection; this project uses none of them) and retries the broker for ever
  (``CELERY_BROKER_CONNECTION_MAX_RETRIES``);
- this module runs it as a child process and watches it: when the child exits, or when the broker
  answers but the child has not answered a ping for ``WORKER_STALL_SECONDS``, it is replaced.
  Tasks are acknowledged late, so a task that was running is delivered again; the sweep finishes
  what was overdue meanwhile.

SIGTERM and SIGINT are passed to the child (warm shutdown) and end the supervisor.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from types import FrameType

logger = logging.getLogger("callcenter.worker")

WORKER_FLAGS = ["--without-gossip", "--without-mingle", "--without-heartbeat"]


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value else default


def worker_command(args: list[str], name: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "callcenter", "worker", *WORKER_FLAGS, "-n", name, *args]


def _node_name(args: list[str]) -> tuple[list[str], str]:
    """The worker's node name (``-n``/``--hostname``), made unique and fully expanded: the
    supervisor pings it by that name."""
    rest: list[str] = []
    name = ""
    iterator = iter(args)
    for arg in iterator:
        if arg in ("-n", "--hostname"):
            name = next(iterator, "")
        elif arg.startswith("--hostname="):
            name = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    host = socket.gethostname()
    if not name:
        name = f"worker-{uuid.uuid4().hex[:6]}@{host}"
    name = name.replace("%h", host).replace("%n", host.split(".")[0])
    if "@" not in name:
        name = f"{name}@{host}"
    return rest, name


class Supervisor:
    def __init__(self, args: list[str]) -> None:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callcenter.settings")
        django.setup()
        from callcenter.celery import app

        self.app = app
        self.args, self.name = _node_name(args)
        self.check_every = _env_float("WORKER_CHECK_SECONDS", 2.0)
        self.stall_seconds = _env_float("WORKER_STALL_SECONDS", 15.0)
        self.startup_seconds = _env_float("WORKER_STARTUP_SECONDS", 60.0)
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.restarts = 0

    def start_child(self) -> None:
        self.child = subprocess.Popen(worker_command(self.args, self.name))
        self.last_answer = time.monotonic()
        self.answered = False
        logger.info("worker %s started (pid %s)", self.name, self.child.pid)

    def stop_child(self, *, grace: float = 10.0) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def broker_answers(self) -> bool:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=0, timeout=1)
                return True
        except Exception:  # any failure to reach the broker means "not now", never a crash
            return False

    def child_answers(self) -> bool:
        try:
            return bool(self.app.control.ping(destination=[self.name], timeout=1.0))
        except Exception:  # the broker went away between the two checks
            return False

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        self.start_child()
        while True:
            assert self.child is not None
            time.sleep(self.check_every)
            if self.stopping:
                try:
                    return self.child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.child.kill()
                    return self.child.wait()
            code = self.child.poll()
            if code is not None:
                logger.error("worker %s exited with code %s; starting it again", self.name, code)
                self.restart()
                continue
            if not self.broker_answers():
                self.last_answer = time.monotonic()  # an outage: the worker is retrying, give it time
                continue
            now = time.monotonic()
            if self.child_answers():
                self.last_answer, self.answered = now, True
                continue
            limit = self.stall_seconds if self.answered else self.startup_seconds
            if now - self.last_answer > limit:
                logger.error(
                    "worker %s has not answered for %.0f s while the broker answers; replacing it",
                    self.name,
                    now - self.last_answer,
                )
                self.stop_child()
                self.restart()

    def restart(self) -> None:
        self.restarts += 1
        time.sleep(min(5.0, 0.5 * self.restarts))
        self.start_child()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/supervisor] %(message)s")
    return Supervisor(list(sys.argv[1:] if argv is None else argv)).run()


if __name__ == "__main__":
    sys.exit(main())
