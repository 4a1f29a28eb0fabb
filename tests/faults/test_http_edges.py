"""gunicorn's own error answers (before Django sees the request) are problem details too."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.processes import start_web

pytestmark = [pytest.mark.fault]


def _raw(port: int, request: bytes) -> tuple[int, str, dict[str, Any]]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers.get("content-type", ""), json.loads(body)


class GunicornErrorTests:
    def test_a_too_long_url_too_many_headers_and_garbage_are_problem_details(
        self, tmp_path: Path, processes: list[Any]
    ) -> None:
        web = start_web(tmp_path, workers=1)
        processes.append(web)
        cases = [
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
            (
                b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n",
                431,
            ),
            (b"NOT A REQUEST\r\n\r\n", 400),
        ]
        for request, status in cases:
            got, content_type, body = _raw(web.port, request)
            assert got == status, (got, body)
            assert content_type == "application/problem+json"
            assert body["status"] == status and body["code"] and body["title"] and body["detail"]
