"""Real processes for the fault tests: redis-server, gunicorn, the supervised Celery worker, and a
TCP proxy in front of Postgres that the test can make refuse or black-hole connections.

Every process is started on a free loopback port, pointed at this run's test database, and stopped
by the fixture that started it. Nothing here sleeps for a fixed time to "let things settle": callers
poll for the state they need with ``wait_for`` and a generous deadline.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parents[1]

# Settings for every child process: production-like (DEBUG off), short timeouts so faults show fast.
CHILD_SECRET_KEY = "fault-tests-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
STATEMENT_TIMEOUT_MS = 2000
CHILD_FIELD_KEY = "ZeUAZJ-xQq2lbgu1AFU2kmy6jKkjuFIQlFzP2SsSWng="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], *, seconds: float, every: float = 0.1, what: str = "") -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {seconds:.0f} s: {what}")
        time.sleep(every)


def database_url(*, host: str | None = None, port: int | None = None) -> str:
    from django.conf import settings

    database = settings.DATABASES["default"]
    credentials = quote(database["USER"] or "", safe="")
    if database["PASSWORD"]:
        credentials += ":" + quote(database["PASSWORD"], safe="")
    host = host or database["HOST"] or "127.0.0.1"
    # A unix-socket host (embedded Postgres) goes percent-encoded in the host part.
    where = quote(host, safe="") if host.startswith("/") else f"{host}:{port or database['PORT'] or 5432}"
    return f"postgres://{credentials}@{where}/{database['NAME']}"


def child_env(**overrides: str) -> dict[str, str]:
    """The environment of a web or worker process on this test run's database and Redis."""
    from django.conf import settings

    env = {name: value for name, value in os.environ.items() if name not in ("PYTEST_VERSION", "PYTEST_CURRENT_TEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="callcenter.settings",
        DATABASE_URL=database_url(),
        TEST_DATABASE_NAME=settings.DATABASES["default"]["NAME"],
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        DEBUG="false",
        SECRET_KEY=CHILD_SECRET_KEY,
        ALLOWED_HOSTS="localhost,127.0.0.1,.localhost",
        # Production refuses the development key; the test's own key still decrypts (rotation list).
        FIELD_ENCRYPTION_KEY=f"{CHILD_FIELD_KEY},{settings.FIELD_ENCRYPTION_KEY}",
        DB_STATEMENT_TIMEOUT_MS=str(STATEMENT_TIMEOUT_MS),
        DB_CONNECT_TIMEOUT="2",
        REDIS_SOCKET_TIMEOUT="1.0",
        SECURE_HSTS_SECONDS="0",
        # Production refuses to serve /metrics without a token.
        METRICS_TOKEN="fault-tests-metrics-token",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@dataclass
class Child:
    """A child process whose output goes to a log file (read it in assertion messages)."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        log = self.log_path.open("ab")
        # Its own process group: stopping it also stops what it started (gunicorn's workers).
        self.process = subprocess.Popen(
            self.args, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass


class RedisServer:
    """A redis-server of the test's own on a spare loopback port, empty at every start."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = directory
        self.child: Child | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for the fault tests"
        self.child = Child(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            env=dict(os.environ),
            log_path=self.directory / f"redis-{self.port}.log",
        ).start()  # fmt: skip
        wait_for(self.answers, seconds=20, what=f"redis-server on {self.port}")
        return self

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """kill -9: no save, no goodbye (it restarts empty)."""
        if self.child is not None:
            self.child.stop(sig=signal.SIGKILL)

    def stop(self) -> None:
        self.kill()


class TcpProxy:
    """A TCP proxy the test controls, in front of Postgres.

    ``forward``: pass bytes both ways. ``refuse``: close every connection (existing and new) at once,
    as a stopped server would. ``blackhole``: keep connections open but pass nothing either way, as
    a network that drops packets would (clients wait for ever unless they time out).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.mode = "forward"
        self.lock = threading.Lock()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def set_mode(self, mode: str) -> None:
        assert mode in ("forward", "refuse", "blackhole")
        with self.lock:
            self.mode = mode
            if mode == "refuse":
                for pair in self.pairs:
                    for sock in pair:
                        _close(sock)
                self.pairs.clear()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                mode = self.mode
            if mode == "refuse":
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        sockets = [client, upstream]
        try:
            while not self.stopped:
                readable, _, _ = select.select(sockets, [], [], 0.1)
                with self.lock:
                    mode = self.mode
                if mode == "blackhole":
                    continue  # read nothing, send nothing: the peers' data sits unanswered
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            _close(client)
            _close(upstream)

    def stop(self) -> None:
        self.stopped = True
        _close(self.listener)
        with self.lock:
            for pair in self.pairs:
                for sock in pair:
                    _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any
    elapsed: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    key: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Reply:
    """One HTTP request on a new connection. A connection error is a Reply with status 0."""
    sent = {"Host": "localhost", **({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, parsed, time.monotonic() - started
        )
    except (OSError, http.client.HTTPException) as exc:
        return Reply(0, {}, str(exc), time.monotonic() - started)
    finally:
        connection.close()


def start_web(directory: Path, *, workers: int = 2, env: dict[str, str] | None = None, name: str = "web") -> WebServer:
    port = free_port()
    child = Child(
        [sys.executable, "-m", "gunicorn", "-c", "python:callcenter.gunicorn_conf", "callcenter.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "30"],
        env=env or child_env(),
        log_path=directory / f"{name}-{port}.log",
    ).start()  # fmt: skip
    server = WebServer(port=port, child=child)
    wait_for(
        lambda: server.alive_or_fail() and http_request(port, "GET", "/health", timeout=5).status in (200, 503),
        seconds=60,
        every=0.2,
        what=f"gunicorn on {port}: {child.log()}",
    )
    return server


@dataclass
class WebServer:
    port: int
    child: Child

    def alive_or_fail(self) -> bool:
        assert self.child.alive(), self.child.log()
        return True

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        return http_request(self.port, method, path, **kwargs)

    def worker_pids(self) -> list[int]:
        assert self.child.process is not None
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.child.process.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in out.stdout.split()]

    def stop(self) -> None:
        self.child.stop()


def start_worker(directory: Path, *, env: dict[str, str] | None = None, name: str | None = None) -> Child:
    """The worker as production runs it (``python -m callcenter.worker``), solo pool."""
    import uuid

    node = name or f"fault-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    child = Child(
        [sys.executable, "-m", "callcenter.worker", "--concurrency=2", "-n", node, "--loglevel=INFO"],
        env=env or child_env(WORKER_CHECK_SECONDS="0.5", WORKER_STALL_SECONDS="5", LOG_LEVEL="INFO"),
        log_path=directory / f"worker-{node.split('@')[0]}.log",
    ).start()
    child.node = node  # type: ignore[attr-defined]
    return child


def _retryable(reply: Reply) -> bool:
    problem = isinstance(reply.body, dict) and "code" in reply.body
    return reply.status == 0 or (reply.status >= 500 and problem)


def unanswered(answers: list[tuple[float, str, int, dict[str, Any] | None]]) -> list[Any]:
    return [answer for answer in answers if answer[2] == 0]


@dataclass
class Traffic:
    """Live traffic through the HTTP API from a few threads (bounded, stops by itself).

    Each thread posts calls with an ``Idempotency-Key`` and completes those that were assigned;
    every answer's status is recorded with the time it was received, for the outage timeline.
    """

    port: int
    key: str
    threads: int = 3
    max_seconds: float = 120
    timeout: float = 20
    answers: list[tuple[float, str, int, dict[str, Any] | None]] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)  # idempotency key -> call id
    stop_event: threading.Event = field(default_factory=threading.Event)
    workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Traffic:
        for index in range(self.threads):
            thread = threading.Thread(target=self._loop, args=(index,), daemon=True)
            thread.start()
            self.workers.append(thread)
        return self

    def _record(self, what: str, reply: Reply) -> None:
        self.answers.append(
            (time.monotonic(), what, reply.status, reply.body if isinstance(reply.body, dict) else None)
        )

    def _loop(self, index: int) -> None:
        started = time.monotonic()
        sequence = 0
        while not self.stop_event.is_set() and time.monotonic() - started < self.max_seconds:
            sequence += 1
            key = f"traffic-{index}-{sequence}"
            body = {"phone_number": f"+3460{index:02d}{sequence:05d}", "call_type": "llamada_tipo_1"}
            # As a careful client does: no answer or a 503 problem -> the same request, same key, again.
            while True:
                reply = http_request(
                    self.port, "POST", "/calls", key=self.key, body=body, headers={"Idempotency-Key": key},
                    timeout=self.timeout,
                )  # fmt: skip
                self._record("create", reply)
                if not _retryable(reply) or self.stop_event.is_set():
                    break
                self.stop_event.wait(0.2)
            if reply.status in (201, 202) and isinstance(reply.body, dict):
                self.created[key] = reply.body["id"]
                if reply.status == 201:
                    done = http_request(
                        self.port, "POST", f"/calls/{reply.body['id']}/complete", key=self.key, body={}, timeout=10
                    )
                    self._record("complete", done)
            self.stop_event.wait(0.05)

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.workers:
            thread.join(timeout=30)

    def since(self, moment: float) -> list[tuple[float, str, int, dict[str, Any] | None]]:
        return [answer for answer in list(self.answers) if answer[0] >= moment]

    def ok_since(self, moment: float) -> bool:
        """A call was created (201/202) after ``moment``."""
        return any(status in (201, 202) and kind == "create" for at, kind, status, _ in self.since(moment))
