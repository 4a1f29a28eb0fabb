"""Public-schema models: tenants, their domains and their API keys."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django_tenants.models import DomainMixin, TenantMixin


class Tenant(TenantMixin):
    """A call centre. Its ``schema_name`` holds all of its data; ``slug`` names it in hosts and keys."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class Domain(DomainMixin):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)


class ApiKey(models.Model):
    """An API key ``cc_<prefix>_<secret>``: only the prefix and the SHA-256 of the secret are stored."""

    class Scope(models.TextChoices):
        READ = "read", "read"
        WRITE = "write", "read and write"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    # Serves the lookup of every authenticated request (unique index).
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.WRITE)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=["read", "write"]), name="apikey_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"cc_{self.prefix}_… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class InstanceIdentity(models.Model):
    """One row: the id of this deployment, shared with its Redis (see assignment.services.identity)."""

    instance_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "instance identity"

    def __str__(self) -> str:
        return str(self.instance_id)
