from __future__ import annotations

import socket
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assignment import engine
from callcenter.health import HEARTBEAT_MAX_AGE_SECONDS


class Command(BaseCommand):
    help = (
        "Exit 0 when a Celery worker or beat process on this host wrote its heartbeat recently, else 1: the "
        "container healthcheck of the worker and beat services (no blocking ping of the workers)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("process", choices=["worker", "beat"], help="which kind of process to check")
        parser.add_argument(
            "--host",
            default=socket.gethostname(),
            help="the host whose process is checked (default: this one; any host with --any-host)",
        )
        parser.add_argument("--any-host", action="store_true", help="accept a heartbeat from any host")
        parser.add_argument(
            "--max-age",
            type=float,
            default=HEARTBEAT_MAX_AGE_SECONDS,
            help=f"seconds a heartbeat stays fresh (default {HEARTBEAT_MAX_AGE_SECONDS:g})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ages = engine.heartbeats_read(now=time.time())
        prefix = f"{options['process']}:"
        mine = {
            name: age
            for name, age in ages.items()
            if name.startswith(prefix) and (options["any_host"] or options["host"] in name.removeprefix(prefix))
        }
        fresh = {name: age for name, age in mine.items() if age <= options["max_age"]}
        if not fresh:
            where = "any host" if options["any_host"] else options["host"]
            raise CommandError(f"No {options['process']} heartbeat from {where} in the last {options['max_age']:g} s.")
        for name, age in sorted(fresh.items()):
            self.stdout.write(f"{name.removeprefix(prefix)}: {age:.1f} s ago")
