from __future__ import annotations

import time
import urllib.request
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.banner import banner_lines, credentials_load, credentials_save, web_port


def web_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class Command(BaseCommand):
    help = (
        "Print where to log in, the demo API key and the docs' address (what `make run` prints once the web "
        "answers; `make info` runs this)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port",
            type=int,
            default=None,
            help="the web server's port (default: $WEB_PORT, else $PORT, else the port of the last `make run`, "
            "else 8000)",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="wait up to this long for the web server to answer before printing (default: do not wait)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        saved = credentials_load()
        port = int(options["port"] or web_port())
        deadline = time.monotonic() + options["wait"]
        while not web_answers(port) and time.monotonic() < deadline:
            time.sleep(0.5)
        answering = web_answers(port)
        if options["wait"] and not answering:
            raise CommandError(f"The web server did not answer on port {port} within {options['wait']:g} s.")
        if options["wait"] and saved and saved.get("port") != port:
            credentials_save({**saved, "port": port})  # so that a later `make info` knows where to look
        lines = banner_lines(port=port)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(lines[0]))
        for line in lines[1:]:
            self.stdout.write(line)
        if not answering:
            self.stdout.write(self.style.WARNING(f"  (nothing answers on port {port} now: start it with `make run`)"))
        self.stdout.write("")
