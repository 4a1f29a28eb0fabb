from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from assignment.services.recovery import engine_drift, engine_rebuild
from tenants.selectors import tenant_get, tenant_list


class Command(BaseCommand):
    help = "Rebuild a tenant's Redis state from Postgres (the source of truth). All tenants by default."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="tenant slug (default: every tenant)")
        parser.add_argument("--check", action="store_true", help="only report drift; change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["tenant"]:
            tenant = tenant_get(slug=options["tenant"])
            if tenant is None:
                raise CommandError(f"No tenant {options['tenant']!r}.")
            tenants = [tenant]
        else:
            tenants = list(tenant_list())
        drifted = 0
        for tenant in tenants:
            with schema_context(tenant.schema_name):
                drift = engine_drift()
                self.stdout.write(f"{tenant.slug}: {'in sync' if not drift else drift.summary()}")
                if drift:
                    drifted += 1
                if options["check"]:
                    continue
                engine_rebuild()
                after = engine_drift()
                self.stdout.write(f"{tenant.slug}: rebuilt; {'in sync' if not after else after.summary()}")
        if options["check"] and drifted:
            raise CommandError(f"{drifted} tenant(s) out of sync.")
