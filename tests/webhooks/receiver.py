"""A real HTTP receiver on 127.0.0.1 for webhook tests: answers each POST with the next planned
reply (a status, or a hang of some seconds first), and keeps every request it received."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    # Each POST takes the next plan entry, the last one is kept: an int status, or ("hang", seconds, status).
    plan: list[Any] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self) -> Any:
        with self.lock:
            return self.plan.pop(0) if len(self.plan) > 1 else self.plan[0]


@contextmanager
def http_receiver(plan: list[Any] | None = None) -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            reply = receiver.next_reply()
            with receiver.lock:
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if isinstance(reply, tuple):
                _, seconds, reply = reply
                receiver.release.wait(seconds)
            try:
                self.send_response(reply)
                self.send_header("Content-Type", "text/plain")
                payload = b"ok" if reply < 300 else b"receiver says no " + b"x" * 10000
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up (timeout): what a real receiver would see

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook", plan=list(plan or [200]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_until(predicate: Any, *, seconds: float = 30.0, every: float = 0.05, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(every)
