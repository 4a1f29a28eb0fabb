"""Writes of the public schema: tenants and API keys."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from callcenter.actors import Actor
from callcenter.errors import ApplicationError
from callcenter.passwords import password_generate
from tenants.models import ApiKey, Domain, Tenant
from tenants.selectors import KEY_PREFIX, apikey_cache_forget, domain_cache_forget, hash_secret
from tenants.signals import apikey_changed, tenant_schema_created

_SLUG = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
_RESERVED_SLUGS = {"public", "www", "admin", "api", "static", "information_schema", "default"}


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    raw_key: str


@dataclass(frozen=True)
class CreatedTenant:
    tenant: Tenant
    domain: str
    admin_username: str
    admin_password: str
    issued_key: IssuedKey


def tenant_create(
    *, name: str, slug: str, admin_username: str = "admin", admin_password: str | None = None
) -> CreatedTenant:
    """Create a tenant: its schema (migrated), its domain ``<slug>.<TENANT_BASE_DOMAIN>``, default
    configuration (SPEC §2), a tenant admin user and a write-scope API key.

    Schema creation cannot share a transaction with the rows, so a failure part-way drops the tenant
    (and its schema) again: no half-created tenant is left behind.
    """
    slug = slug.strip().lower()
    if not _SLUG.match(slug) or slug in _RESERVED_SLUGS or slug.startswith("pg_"):
        raise ApplicationError(
            code="invalid_slug",
            message=(
                "slug must be 2-41 characters of lowercase letters, digits or _, "
                "starting with a letter, and not reserved."
            ),
        )
    if not name.strip():
        raise ApplicationError(code="validation_error", message="name must not be empty.")
    if Tenant.objects.filter(slug=slug).exists():
        raise ApplicationError(code="tenant_exists", message=f"A tenant with slug {slug!r} already exists.", status=409)

    tenant = Tenant(name=name.strip(), slug=slug, schema_name=slug)
    tenant.save(verbosity=0)  # creates and migrates the schema, quietly: what the caller prints stays readable
    try:
        domain = f"{slug}.{settings.TENANT_BASE_DOMAIN}"
        Domain.objects.create(tenant=tenant, domain=domain, is_primary=True)
        domain_cache_forget(hostname=domain)  # a lookup made before now may have cached "no such host"
        password = admin_password or password_generate(12)
        with schema_context(tenant.schema_name):
            tenant_schema_created.send(sender=Tenant, tenant=tenant)
            get_user_model().objects.create_superuser(username=admin_username, email="", password=password)
        issued = apikey_create(tenant=tenant, name="initial key", scope=ApiKey.Scope.WRITE, actor=Actor.system())
    except BaseException:
        tenant.delete(force_drop=True)
        raise
    return CreatedTenant(
        tenant=tenant, domain=domain, admin_username=admin_username, admin_password=password, issued_key=issued
    )


def tenant_delete(*, tenant: Tenant) -> None:
    """Drop a tenant, its schema (all its data) and its keys."""
    prefixes = list(tenant.api_keys.values_list("prefix", flat=True))
    hostnames = list(tenant.domains.values_list("domain", flat=True))
    tenant.delete(force_drop=True)
    for prefix in prefixes:
        apikey_cache_forget(prefix=prefix)
    # Otherwise the host would still select the dropped schema until the cached lookup expires.
    for hostname in hostnames:
        domain_cache_forget(hostname=hostname)


def apikey_create(*, tenant: Tenant, name: str, scope: str, actor: Actor) -> IssuedKey:
    """Issue a key. The raw key is returned once and never stored."""
    if scope not in ApiKey.Scope.values:
        raise ApplicationError(code="validation_error", message=f"scope must be one of {ApiKey.Scope.values}.")
    with transaction.atomic():
        while True:
            prefix = secrets.token_hex(4)
            if not ApiKey.objects.filter(prefix=prefix).exists():
                break
        secret = secrets.token_urlsafe(32)
        api_key = ApiKey.objects.create(
            tenant=tenant,
            name=name,
            prefix=prefix,
            secret_hash=hash_secret(secret),
            scope=scope,
            created_by=actor.label,
        )
    with schema_context(tenant.schema_name):
        apikey_changed.send(
            sender=ApiKey, actor=actor, action="apikey.create", api_key=api_key, after={"name": name, "scope": scope}
        )
    apikey_cache_forget(prefix=prefix)
    return IssuedKey(api_key=api_key, raw_key=f"{KEY_PREFIX}{prefix}_{secret}")


def apikey_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    """Revoke a key; every process stops accepting it at once (its cache entry is deleted)."""
    if api_key.revoked_at is None:
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        api_key.refresh_from_db()
        with schema_context(api_key.tenant.schema_name):
            apikey_changed.send(
                sender=ApiKey,
                actor=actor,
                action="apikey.revoke",
                api_key=api_key,
                before={"revoked": False},
                after={"revoked": True},
            )
    apikey_cache_forget(prefix=api_key.prefix)
    return api_key


def apikey_touch(*, key_id: int) -> None:
    ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())
