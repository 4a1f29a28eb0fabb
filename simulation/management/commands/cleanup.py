from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from simulation.services import simulation_data_remove, simulation_data_summary
from tenants.selectors import tenant_get


class Command(BaseCommand):
    help = "Remove a tenant's simulation data (runs, their calls, the simulation agents). Asks unless --yes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="slug of the tenant whose simulation data is removed")
        parser.add_argument("--yes", action="store_true", help="do not ask")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_get(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        with schema_context(tenant.schema_name):
            summary = simulation_data_summary()
            self.stdout.write(
                f"{tenant.slug}: {summary['runs']} simulation runs, {summary['calls']} simulated calls, "
                f"{summary['agents']} simulation agents."
            )
            if not any(summary.values()):
                self.stdout.write("Nothing to remove.")
                return
            if not options["yes"]:
                answer = input("Remove them? Type 'yes' to confirm: ")
                if answer.strip().lower() != "yes":
                    raise CommandError("Cancelled; nothing removed.")
            removed = simulation_data_remove()
            self.stdout.write(self.style.SUCCESS(f"Removed {removed}."))
