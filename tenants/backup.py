"""Per-tenant backup and restore: the tenant's schema (``pg_dump`` of that schema alone) and its
rows of the public schema (the tenant, its domains, its API keys: prefix and hash, never a secret).

A backup is a directory: ``schema.dump`` (pg_dump custom format) and ``tenant.json``. Restoring
recreates the tenant (the slug must be free, or ``replace=True`` drops the current one first),
loads its schema, restores its domains and keys, and rebuilds its Redis state from Postgres.
Phone numbers stay encrypted in the dump: restore where ``FIELD_ENCRYPTION_KEY`` lists the key
they were written with.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django_tenants.utils import schema_context

from callcenter.errors import ApplicationError
from tenants.models import ApiKey, Domain, Tenant
from tenants.selectors import apikey_cache_forget, domain_cache_forget
from tenants.signals import tenant_schema_restored

FORMAT_VERSION = 1


def _pg_env() -> dict[str, str]:
    database = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        PGHOST=str(database["HOST"] or "127.0.0.1"),
        PGPORT=str(database["PORT"] or 5432),
        PGUSER=str(database["USER"] or ""),
        PGDATABASE=str(database["NAME"]),
    )
    if database["PASSWORD"]:
        env["PGPASSWORD"] = str(database["PASSWORD"])
    return env


def _run(args: list[str]) -> None:
    result = subprocess.run(args, env=_pg_env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ApplicationError(code="backup_failed", message=f"{args[0]} failed: {result.stderr.strip()[:500]}")


def tenant_backup(*, tenant: Tenant, directory: Path) -> Path:
    """Write the tenant's backup into ``directory`` (created). Consistent per part: pg_dump takes
    one snapshot of the schema; the public rows are read in one transaction."""
    directory.mkdir(parents=True, exist_ok=True)
    dump = directory / "schema.dump"
    _run(["pg_dump", "--format=custom", "--no-owner", f"--schema={tenant.schema_name}", f"--file={dump}"])
    with transaction.atomic():
        public: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "tenant": {"name": tenant.name, "slug": tenant.slug, "schema_name": tenant.schema_name},
            "domains": list(Domain.objects.filter(tenant=tenant).values("domain", "is_primary")),
            "api_keys": [
                {**row, "revoked_at": row["revoked_at"].isoformat() if row["revoked_at"] else None}
                for row in ApiKey.objects.filter(tenant=tenant).values(
                    "name", "prefix", "secret_hash", "scope", "created_by", "revoked_at"
                )
            ],
        }
    (directory / "tenant.json").write_text(json.dumps(public, indent=2))
    return directory


def tenant_restore(*, directory: Path, replace: bool = False) -> Tenant:
    """Recreate a tenant from ``tenant_backup``'s directory, then rebuild its Redis state."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return _restore(directory=directory, replace=replace)


def _restore(*, directory: Path, replace: bool) -> Tenant:
    from tenants.services import tenant_delete

    if not (directory / "tenant.json").is_file() or not (directory / "schema.dump").is_file():
        raise ApplicationError(
            code="backup_unreadable", message=f"{directory} is not a tenant backup (no tenant.json and schema.dump)."
        )
    try:
        public = json.loads((directory / "tenant.json").read_text())
    except (OSError, ValueError):
        public = {}
    if not isinstance(public, dict) or public.get("format") != FORMAT_VERSION:
        raise ApplicationError(code="backup_unreadable", message="Not a tenant backup of this version.")
    meta = public["tenant"]
    existing = Tenant.objects.filter(slug=meta["slug"]).first()
    if existing is not None:
        if not replace:
            raise ApplicationError(code="tenant_exists", message=f"Tenant {meta['slug']!r} exists (use --replace).")
        tenant_delete(tenant=existing)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [meta["schema_name"]])
        if cursor.fetchone():
            raise ApplicationError(code="schema_exists", message=f"Schema {meta['schema_name']!r} already exists.")
    dump = directory / "schema.dump"
    _run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={_pg_env()['PGDATABASE']}", str(dump)])
    with transaction.atomic():
        tenant = Tenant(name=meta["name"], slug=meta["slug"], schema_name=meta["schema_name"])
        tenant.auto_create_schema = False  # restored above, with its data
        tenant.save()
        for domain in public["domains"]:
            Domain.objects.create(tenant=tenant, **domain)
        for key in public["api_keys"]:
            ApiKey.objects.create(tenant=tenant, **key)
    for key in public["api_keys"]:
        apikey_cache_forget(prefix=key["prefix"])
    for domain in public["domains"]:
        domain_cache_forget(hostname=domain["domain"])
    with schema_context(tenant.schema_name):
        tenant_schema_restored.send(sender=Tenant, tenant=tenant)
    return tenant
