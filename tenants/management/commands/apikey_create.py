from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from callcenter.actors import Actor
from callcenter.errors import ApplicationError
from tenants.models import ApiKey
from tenants.selectors import tenant_get
from tenants.services import apikey_create, apikey_revoke


class Command(BaseCommand):
    help = "Issue an API key for a tenant (printed once), or revoke one with --revoke PREFIX."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument(
            "--name", default="cli key", help="a label for the key, shown in the admin (default: %(default)s)"
        )
        parser.add_argument(
            "--scope",
            choices=ApiKey.Scope.values,
            default=ApiKey.Scope.WRITE,
            help="read: GET only; write: everything (default)",
        )
        parser.add_argument("--revoke", metavar="PREFIX", help="revoke the key with this prefix instead")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_get(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        actor = Actor.system("cli")
        if options["revoke"]:
            api_key = ApiKey.objects.filter(tenant=tenant, prefix=options["revoke"]).first()
            if api_key is None:
                raise CommandError(f"No key with prefix {options['revoke']!r} for this tenant.")
            apikey_revoke(api_key=api_key, actor=actor)
            self.stdout.write(self.style.SUCCESS(f"Revoked key {api_key.prefix}."))
            return
        try:
            issued = apikey_create(tenant=tenant, name=options["name"], scope=options["scope"], actor=actor)
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(issued.raw_key)
