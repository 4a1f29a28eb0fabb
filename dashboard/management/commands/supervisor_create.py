from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import schema_context

from callcenter.errors import ApplicationError
from dashboard.services import supervisor_create
from tenants.selectors import tenant_get


class Command(BaseCommand):
    help = (
        "Create a supervisor of a tenant: a user of the tenant's own login in the Supervisors group (the "
        "dashboard and its controls, no admin). Prints the password once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--username", required=True, help="the supervisor's login name")
        parser.add_argument("--password", help="a password to set (default: a random one, printed once)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_get(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        with schema_context(tenant.schema_name):
            try:
                _, password = supervisor_create(username=options["username"], password=options["password"])
            except ApplicationError as error:
                raise CommandError(error.message) from error
        host = f"{tenant.slug}.{settings.TENANT_BASE_DOMAIN}"
        self.stdout.write(self.style.SUCCESS(f"Supervisor {options['username']!r} created for {tenant.slug}."))
        self.stdout.write(f"  Dashboard: http://{host}:<port>/dashboard/   (login {options['username']} / {password})")
