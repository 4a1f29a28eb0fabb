from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from callcenter.health import health_report
from simulation.services import tenant_status
from tenants.selectors import tenant_get, tenant_list


class Command(BaseCommand):
    help = "Show the services' health and, per tenant, agents by status, queue depth, active calls and the last run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="slug of one tenant (default: every tenant)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_get(slug=options["tenant"]) if options["tenant"] else None
        if options["tenant"] and tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        tenants = [tenant] if tenant else list(tenant_list())
        report = health_report()
        self.stdout.write(f"services: {report['status']}")
        for name, check in report["checks"].items():
            if check["status"] != "up":
                extra = f" ({check.get('error')})"
            elif "ms" in check:
                extra = f" {check['ms']} ms"
            else:
                extra = f" ({check['count']} seen, last {check.get('last_seen_seconds_ago', 0)} s ago)"
            self.stdout.write(f"  {name}: {check['status']}{extra}")
        for tenant in tenants:
            with schema_context(tenant.schema_name):
                status = tenant_status()
            agents = ", ".join(f"{k} {v}" for k, v in status["agents"].items() if v) or "no agents"
            self.stdout.write(f"{tenant.slug}: {agents}")
            self.stdout.write(
                f"  queue {status['queue_depth']} (oldest wait {status['oldest_wait_seconds']} s), "
                f"active calls {status['active_calls']}, calls today {status['calls_today']}"
            )
            if status["last_run"]:
                self.stdout.write(f"  last simulation: {status['last_run']}")
