from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from simulation.services import simulation_data_remove, simulation_data_summary
from tenants.selectors import tenant_get


class Command(BaseCommand):
    help = (
        "Remove what simulations created in a tenant (finished runs, their calls, simulated agents holding no "
        "open call). Real agents and calls are never touched. Asks unless --yes."
    )

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
                f"{summary['agents']} simulated agents to remove."
            )
            if summary["runs_kept"] or summary["calls_kept"] or summary["agents_kept"]:
                self.stdout.write(
                    f"Kept because in use: {summary['runs_kept']} runs still going on, {summary['calls_kept']} of "
                    f"their calls, {summary['agents_kept']} simulated agents (an open call, or a run going on)."
                )
            if not (summary["runs"] or summary["calls"] or summary["agents"]):
                self.stdout.write("Nothing to remove.")
                return
            if not options["yes"]:
                answer = input("Remove them? Type 'yes' to confirm: ")
                if answer.strip().lower() != "yes":
                    raise CommandError("Cancelled; nothing removed.")
            removed = simulation_data_remove()
            counts = ", ".join(f"{count} {what}" for what, count in removed.items())
            self.stdout.write(self.style.SUCCESS(f"Removed {counts}."))
