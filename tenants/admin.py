from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.http import HttpRequest

from callcenter.actors import Actor
from callcenter.admin_sites import public_admin_site, tenant_admin_site
from callcenter.tenancy import current_schema
from tenants.models import ApiKey, Domain, Tenant
from tenants.selectors import domain_cache_forget
from tenants.services import apikey_create, apikey_revoke, tenant_delete

public_admin_site.register(User, UserAdmin)
public_admin_site.register(Group, GroupAdmin)
tenant_admin_site.register(User, UserAdmin)
tenant_admin_site.register(Group, GroupAdmin)


class DomainInline(admin.TabularInline[Domain, Tenant]):
    model = Domain
    extra = 0


@admin.register(Tenant, site=public_admin_site)
class TenantAdmin(admin.ModelAdmin[Tenant]):
    list_display = ("slug", "name", "schema_name", "created_at")
    search_fields = ("slug", "name")
    readonly_fields = ("schema_name", "created_at", "updated_at")
    inlines = [DomainInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A tenant needs its defaults, admin user and key: `manage.py tenant_create` makes them.
        return False

    def delete_model(self, request: HttpRequest, obj: Tenant) -> None:
        tenant_delete(tenant=obj)  # drops the schema and forgets cached keys and hosts at once

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            tenant_delete(tenant=tenant)


@admin.register(Domain, site=public_admin_site)
class DomainAdmin(admin.ModelAdmin[Domain]):
    list_display = ("domain", "tenant", "is_primary")
    search_fields = ("domain",)

    def save_model(self, request: HttpRequest, obj: Domain, form: Any, change: bool) -> None:
        if change:
            domain_cache_forget(hostname=Domain.objects.get(pk=obj.pk).domain)  # the old name stops at once
        super().save_model(request, obj, form, change)
        domain_cache_forget(hostname=obj.domain)

    def delete_model(self, request: HttpRequest, obj: Domain) -> None:
        super().delete_model(request, obj)
        domain_cache_forget(hostname=obj.domain)


def _actor(request: HttpRequest) -> Actor:
    return Actor.user(getattr(request.user, "username", "admin"))


@admin.action(description="Revoke selected keys")
def revoke_keys(modeladmin: Any, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
    for api_key in queryset.select_related("tenant"):
        apikey_revoke(api_key=api_key, actor=_actor(request))
    messages.success(request, f"Revoked {queryset.count()} key(s).")


class ApiKeyAdminBase(admin.ModelAdmin[ApiKey]):
    list_display = ("name", "prefix", "scope", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope",)
    actions = [revoke_keys]
    fields = ("name", "scope", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at", "revoked_at")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # keys are revoked, not deleted, so the audit trail keeps its meaning

    def _tenant_for_new_key(self, request: HttpRequest, obj: ApiKey) -> Tenant:
        raise NotImplementedError

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        issued = apikey_create(
            tenant=self._tenant_for_new_key(request, obj), name=obj.name, scope=obj.scope, actor=_actor(request)
        )
        obj.pk = issued.api_key.pk
        obj.prefix = issued.api_key.prefix
        messages.warning(request, f"New API key (shown once, copy it now): {issued.raw_key}")


@admin.register(ApiKey, site=public_admin_site)
class PublicApiKeyAdmin(ApiKeyAdminBase):
    list_display = ("name", "tenant", "prefix", "scope", "created_at", "last_used_at", "revoked_at")  # type: ignore[assignment]
    list_filter = ("scope", "tenant")  # type: ignore[assignment]
    fields = ("tenant", *ApiKeyAdminBase.fields)  # type: ignore[assignment]

    def _tenant_for_new_key(self, request: HttpRequest, obj: ApiKey) -> Tenant:
        return obj.tenant


@admin.register(ApiKey, site=tenant_admin_site)
class TenantApiKeyAdmin(ApiKeyAdminBase):
    """A tenant admin manages its own tenant's keys only."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).filter(tenant__schema_name=current_schema())

    def _tenant_for_new_key(self, request: HttpRequest, obj: ApiKey) -> Tenant:
        return Tenant.objects.get(schema_name=current_schema())
