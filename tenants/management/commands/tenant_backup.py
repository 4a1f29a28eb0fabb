from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from callcenter.errors import ApplicationError
from tenants.backup import tenant_backup, tenant_restore
from tenants.selectors import tenant_get


class Command(BaseCommand):
    help = (
        "Back up one tenant (its schema and its public rows) into a directory, or restore one from "
        "such a directory with --restore (its Redis state is rebuilt from Postgres)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", help="where the backup is written, or read from with --restore")
        parser.add_argument(
            "--tenant", help="slug of the tenant to back up (required to back up; a restore takes it from the backup)"
        )
        parser.add_argument("--restore", action="store_true", help="restore the backup in DIRECTORY")
        parser.add_argument("--replace", action="store_true", help="with --restore: drop the tenant if it exists")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(options["directory"])
        try:
            if options["restore"]:
                restored = tenant_restore(directory=directory, replace=options["replace"])
                self.stdout.write(self.style.SUCCESS(f"Restored tenant {restored.slug} from {directory}."))
                return
            if not options["tenant"]:
                raise CommandError("Name the tenant to back up with --tenant SLUG.")
            tenant = tenant_get(slug=options["tenant"])
            if tenant is None:
                raise CommandError(f"No tenant {options['tenant']!r}.")
            tenant_backup(tenant=tenant, directory=directory)
            self.stdout.write(self.style.SUCCESS(f"Backed up tenant {tenant.slug} into {directory}."))
        except ApplicationError as error:
            raise CommandError(error.message) from error
