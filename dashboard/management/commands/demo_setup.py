from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django_tenants.utils import schema_context

from callcenter.actors import Actor
from callcenter.passwords import password_generate
from tenants.banner import banner_lines, credentials_load, credentials_save
from tenants.models import Domain, Tenant
from tenants.selectors import tenant_get
from tenants.services import apikey_create, tenant_create


class Command(BaseCommand):
    help = (
        "Idempotently set up local development: the public tenant and a platform admin, and a demo tenant "
        "with its admin and API key. Credentials are kept in .local/demo-credentials.json (local only) and printed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", default="demo", help="the demo tenant's slug (default: demo)")
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("PORT") or 8000),
            help="the web server's port, for the printed URLs (default: $PORT, else 8000)",
        )
        parser.add_argument("--quiet", action="store_true", help="set up without printing the logins")

    def handle(self, *args: Any, **options: Any) -> None:
        saved = credentials_load()
        public = Tenant.objects.filter(schema_name=settings.PUBLIC_SCHEMA_NAME).first()
        if public is None:
            public = Tenant(schema_name=settings.PUBLIC_SCHEMA_NAME, name="Platform", slug="public")
            public.save()
        for host in ("localhost", "127.0.0.1"):
            Domain.objects.get_or_create(domain=host, defaults={"tenant": public, "is_primary": host == "localhost"})

        user_model = get_user_model()
        if "platform_password" not in saved or not user_model.objects.filter(username="platform").exists():
            saved["platform_password"] = password_generate(10)
            user = user_model.objects.filter(username="platform").first() or user_model(username="platform")
            user.is_staff = user.is_superuser = True
            user.set_password(saved["platform_password"])
            user.save()

        slug = options["slug"]
        tenant = tenant_get(slug=slug)
        if tenant is None:
            created = tenant_create(name="Demo call centre", slug=slug)
            tenant = created.tenant
            saved.update(admin_password=created.admin_password, api_key=created.issued_key.raw_key)
        elif "api_key" not in saved or "admin_password" not in saved:
            saved["api_key"] = apikey_create(
                tenant=tenant, name="demo key", scope="write", actor=Actor.system()
            ).raw_key
            saved["admin_password"] = password_generate(10)
            with schema_context(tenant.schema_name):
                admin = user_model.objects.filter(username="admin").first() or user_model(username="admin")
                admin.is_staff = admin.is_superuser = True
                admin.set_password(saved["admin_password"])
                admin.save()
        with schema_context(tenant.schema_name):
            if "supervisor_password" not in saved or not user_model.objects.filter(username="supervisor").exists():
                from dashboard.services import supervisor_create

                user_model.objects.filter(username="supervisor").delete()
                saved["supervisor_password"] = supervisor_create(username="supervisor")[1]
        saved["slug"] = slug
        credentials_save(saved)
        if options["quiet"]:
            done = f"Callcenter is set up (tenant {slug!r}). `make info` shows the logins."
            self.stdout.write(self.style.SUCCESS(done))
            return
        for line in banner_lines(port=options["port"]):
            self.stdout.write(line)
