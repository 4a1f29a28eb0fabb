"""gunicorn settings for the web process: ``gunicorn -c python:callcenter.gunicorn_conf callcenter.wsgi``.

Besides the usual knobs (read from the environment), it makes gunicorn's own error answers (a
request line over 4 KB: 414, too many or too large headers: 431, a malformed request: 400) RFC 9457
problem details like every other error of the API, instead of gunicorn's HTML page.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from gunicorn import util
from gunicorn.glogging import Logger

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS", "3"))
# A request never needs this long (every database round trip ends within DB_STATEMENT_TIMEOUT_MS,
# every Redis one within REDIS_SOCKET_TIMEOUT); past it the worker is stuck and is replaced.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "10"))
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None
# gunicorn's control socket (for `gunicornc`) defaults to one path per user (~/.gunicorn/gunicorn.ctl),
# which two servers of the machine would share: each one gets its own, named by the master's process id
# (this file is read by the master), under the checkout's .local/; where that cannot be written (a
# container's read-only code), there is none.
_LOCAL = Path(__file__).resolve().parent.parent / ".local"
control_socket = str(_LOCAL / f"gunicorn-{os.getpid()}.ctl")
control_socket_disable = not os.access(_LOCAL if _LOCAL.exists() else _LOCAL.parent, os.W_OK)

# What each open page polls every second: its answers are not written to the access log (server errors are).
QUIET_PATHS = frozenset({"/dashboard/api/state"})


class AccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, without one access-log line per second per open dashboard."""

    def access(self, resp: object, req: object, environ: dict[str, object], request_time: object) -> None:
        if environ.get("PATH_INFO") in QUIET_PATHS and (getattr(resp, "status_code", None) or 500) < 500:
            return
        super().access(resp, req, environ, request_time)


logger_class = AccessLogger

_CODES = {400: "bad_request", 403: "forbidden", 414: "uri_too_long", 417: "expectation_failed",
          431: "headers_too_large", 500: "internal_error", 501: "not_implemented"}  # fmt: skip


def problem_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    code = _CODES.get(status_int, "bad_request")
    body = json.dumps(
        {
            "type": f"urn:callcenter:problem:{code}",
            "title": reason,
            "status": status_int,
            "detail": mesg or reason,
            "code": code,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


# gunicorn's workers call util.write_error at the moment of the error, so replacing it here (the
# config is read by the master before it forks the workers) changes every such answer.
util.write_error = problem_error
