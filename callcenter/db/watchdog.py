"""A client-side deadline for every round trip to Postgres.

Postgres's own ``statement_timeout`` only helps while Postgres answers. When the network drops
packets (or Postgres hangs), libpq waits on its socket for ever: every web worker would hang until
gunicorn kills it, and ``/health`` with it. So each round trip (a query, a commit, a rollback, a
health check) registers its socket and a deadline here; one thread per process shuts down the
socket of a round trip that outlives its deadline. libpq then fails at once ("server closed the
connection"), Django raises ``OperationalError``, the API answers 503 ``database_unavailable`` and
Django discards the connection at the end of the request.

Invariant: a round trip never outlives its deadline by more than ``_TICK`` seconds, and a socket is
only shut down while the round trip that registered it is still in progress (register, unregister
and the shutdown take one lock).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator

_TICK = 0.05

_lock = threading.Lock()
_pending: dict[int, tuple[float, int]] = {}  # token -> (deadline, socket fd)
_tokens = itertools.count()
_thread: threading.Thread | None = None
_thread_pid: int | None = None

# A shorter deadline for one block of code (the health check answers fast or says "down").
_override: contextvars.ContextVar[float | None] = contextvars.ContextVar("db_deadline_override", default=None)


def _run() -> None:
    while True:
        time.sleep(_TICK)
        now = time.monotonic()
        with _lock:
            expired = [(token, fd) for token, (deadline, fd) in _pending.items() if deadline <= now]
            for token, fd in expired:
                del _pending[token]
                _shutdown(fd)


def _shutdown(fd: int) -> None:
    try:
        # shutdown() acts on the socket, not on this duplicate descriptor: libpq's own wait wakes up.
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


def _ensure_thread() -> None:
    global _thread, _thread_pid
    # After a fork (gunicorn, Celery prefork) the parent's thread is gone: start one per process.
    if _thread is not None and _thread_pid == os.getpid():
        return
    with _lock:
        if _thread is None or _thread_pid != os.getpid():
            _pending.clear()
            _thread = threading.Thread(target=_run, name="db-watchdog", daemon=True)
            _thread.start()
            _thread_pid = os.getpid()


@contextlib.contextmanager
def deadline(fd: int | None, seconds: float) -> Iterator[None]:
    """Shut down socket ``fd`` if the block runs longer than ``seconds`` (or the override)."""
    override = _override.get()
    if override is not None:
        seconds = override if seconds <= 0 else min(seconds, override)
    if fd is None or fd < 0 or seconds <= 0:
        yield
        return
    _ensure_thread()
    token = next(_tokens)
    with _lock:
        _pending[token] = (time.monotonic() + seconds, fd)
    try:
        yield
    finally:
        with _lock:
            _pending.pop(token, None)


@contextlib.contextmanager
def at_most(seconds: float) -> Iterator[None]:
    """Every round trip inside the block gets at most ``seconds``."""
    token = _override.set(seconds)
    try:
        yield
    finally:
        _override.reset(token)
