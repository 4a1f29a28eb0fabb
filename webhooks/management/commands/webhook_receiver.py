"""A receiver for trying webhooks locally: prints each message, verified with the endpoint's secret.

    python manage.py webhook_receiver --port 9000 --secret whsec_...

Subscribe ``http://127.0.0.1:9000/`` (``make run`` allows loopback targets), start a simulation,
and watch the events arrive. It verifies as docs/webhooks.md tells a receiver to.
"""

from __future__ import annotations

import hmac
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webhooks.delivery import signature


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    message_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not (message_id and timestamp.isdigit()) or abs(time.time() - int(timestamp)) > 300:
        return False
    expected = signature(secret=secret, message_id=message_id, timestamp=int(timestamp), body=body)
    return any(hmac.compare_digest(expected, given) for given in headers.get("webhook-signature", "").split())


class Command(BaseCommand):
    help = "Listen for webhooks on 127.0.0.1 and print each one, verified with the given secret."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=9000, help="Port on 127.0.0.1 to listen on (default 9000).")
        parser.add_argument("--secret", required=True, help="The endpoint's whsec_ secret.")

    def handle(self, *args: Any, **options: Any) -> None:
        secret: str = options["secret"]
        write = self.stdout.write

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = verified(secret, headers, body)
                self.send_response(204 if ok else 400)
                self.end_headers()
                event = json.loads(body or b"{}")
                data = event.get("data") or {}
                write(
                    f"{'signed' if ok else 'BAD SIGNATURE'} {headers.get('webhook-id')} {event.get('type')} "
                    f"#{event.get('sequence')} {data.get('id', '')} {data.get('status', '')}"
                )

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", options["port"]), Handler)
        write(f"Listening on http://127.0.0.1:{options['port']}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
