from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from callcenter.formatting import count_noun
from simulation.services import simulation_data_remove, simulation_data_summary
from tenants.selectors import tenant_get


class Command(BaseCommand):
    help = (
        "Remove what simulations created in a tenant (finished runs, their calls, simulated agents holding no "
        "open call). Real agents and calls are never touched. Asks unless --yes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="slug of the tenant whose simulation data is removed")
        parser.add_argument("--yes", action="store_true", help="do not ask (without it, no answer means no)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_get(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        with schema_context(tenant.schema_name):
            summary = simulation_data_summary()
            self.stdout.write(f"{tenant.slug}: {_in_words(summary)} to remove.")
            if summary["runs_kept"] or summary["calls_kept"] or summary["agents_kept"]:
                self.stdout.write(
                    f"Kept because in use: {count_noun(summary['runs_kept'], 'run')} still going on, "
                    f"{count_noun(summary['calls_kept'], 'call')} of theirs, "
                    f"{count_noun(summary['agents_kept'], 'simulated agent')} (an open call, or a run going on)."
                )
            if not (summary["runs"] or summary["calls"] or summary["agents"]):
                self.stdout.write("Nothing to remove.")
                return
            if not options["yes"]:
                try:
                    answer = input("Remove them? Type 'yes' to confirm: ")
                except EOFError:  # no terminal on stdin (a pipe, a script): that is a no
                    answer = ""
                if answer.strip().lower() != "yes":
                    raise CommandError("Cancelled; nothing removed (add --yes to remove without asking).")
            removed = simulation_data_remove()
            self.stdout.write(self.style.SUCCESS(f"Removed {_in_words(removed)}."))


def _in_words(counts: dict[str, int]) -> str:
    """``{"runs": 3, "calls": 30, "agents": 1}`` -> ``3 simulation runs, 30 simulated calls and 1 simulated agent``."""
    return (
        f"{count_noun(counts['runs'], 'simulation run')}, {count_noun(counts['calls'], 'simulated call')} "
        f"and {count_noun(counts['agents'], 'simulated agent')}"
    )
