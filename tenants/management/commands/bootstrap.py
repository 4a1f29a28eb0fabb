from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from callcenter.errors import ApplicationError
from tenants.models import Domain, Tenant
from tenants.selectors import tenant_get
from tenants.services import tenant_create


class Command(BaseCommand):
    help = (
        "First start of a deployment (docker compose runs it once): the platform tenant and its admin, and a first "
        "tenant with its admin and API key, printed once. Running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--platform-username",
            default=os.environ.get("PLATFORM_ADMIN_USERNAME", "platform"),
            help="the platform admin's login (default: $PLATFORM_ADMIN_USERNAME, else platform)",
        )
        parser.add_argument(
            "--platform-password",
            default=os.environ.get("PLATFORM_ADMIN_PASSWORD", ""),
            help="the platform admin's password (default: $PLATFORM_ADMIN_PASSWORD; required)",
        )
        parser.add_argument(
            "--tenant-slug",
            default=os.environ.get("FIRST_TENANT_SLUG", "demo"),
            help="the first tenant's slug (default: $FIRST_TENANT_SLUG, else demo)",
        )
        parser.add_argument(
            "--tenant-name",
            default=os.environ.get("FIRST_TENANT_NAME", "First call centre"),
            help="the first tenant's display name (default: $FIRST_TENANT_NAME)",
        )
        parser.add_argument(
            "--public-url",
            default=os.environ.get("PUBLIC_URL", "http://localhost:8000"),
            help="where the web answers, for the printed addresses (default: $PUBLIC_URL, else http://localhost:8000)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["platform_password"]:
            raise CommandError("Set PLATFORM_ADMIN_PASSWORD (or --platform-password): there is no default password.")
        with transaction.atomic():
            public = Tenant.objects.filter(schema_name=settings.PUBLIC_SCHEMA_NAME).first()
            if public is None:
                public = Tenant(schema_name=settings.PUBLIC_SCHEMA_NAME, name="Platform", slug="public")
                public.save()
            for host in ("localhost", "127.0.0.1"):
                Domain.objects.get_or_create(
                    domain=host, defaults={"tenant": public, "is_primary": host == "localhost"}
                )
            users = get_user_model().objects
            username = options["platform_username"]
            if not users.filter(username=username).exists():
                users.create_superuser(username=username, email="", password=options["platform_password"])
                self.stdout.write(f"Platform admin {username!r} created.")
        url = options["public_url"].rstrip("/")
        scheme, _, host = url.partition("://")
        self.stdout.write(f"Platform admin: {url}/admin/   (login {username} / the PLATFORM_ADMIN_PASSWORD you set)")
        self.stdout.write(f"API docs:       {url}/docs")
        slug = options["tenant_slug"]
        if tenant_get(slug=slug) is not None:
            self.stdout.write(
                f"Tenant {slug!r} exists already: its admin login and API key were printed when it was made."
            )
            return
        try:
            created = tenant_create(name=options["tenant_name"], slug=slug)
        except ApplicationError as error:
            raise CommandError(error.message) from error
        port = f":{host.split(':')[1]}" if ":" in host else ""
        self.stdout.write(self.style.SUCCESS(f"Tenant {slug!r} created."))
        self.stdout.write(
            f"  Tenant admin: {scheme}://{created.domain}{port}/admin/   (login admin / {created.admin_password})"
        )
        self.stdout.write(f"  API key:      {created.issued_key.raw_key}")
        self.stdout.write("  The password and the key are shown once: store them now.")
