from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from callcenter.errors import ApplicationError
from tenants.banner import web_port
from tenants.services import tenant_create


class Command(BaseCommand):
    help = (
        "Create a tenant: schema, domain <slug>.<TENANT_BASE_DOMAIN>, defaults, admin user and an API key (shown once)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help='display name, e.g. "ACME"')
        parser.add_argument(
            "--slug", required=True, help="short id: the schema name and the host <slug>.<TENANT_BASE_DOMAIN>"
        )
        parser.add_argument("--admin-username", default="admin", help="the tenant admin's login (default: admin)")
        parser.add_argument("--admin-password", default=None, help="Default: a random one, printed once.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            created = tenant_create(
                name=options["name"],
                slug=options["slug"],
                admin_username=options["admin_username"],
                admin_password=options["admin_password"],
            )
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            self.style.SUCCESS(f"Tenant {created.tenant.slug} created (schema {created.tenant.schema_name}).")
        )
        self.stdout.write(f"  Admin:    http://{created.domain}:{web_port()}/admin/")
        self.stdout.write(f"  Login:    {created.admin_username} / {created.admin_password}")
        self.stdout.write(f"  API key:  {created.issued_key.raw_key}")
        self.stdout.write("  The password and the key are shown once; store them now.")
