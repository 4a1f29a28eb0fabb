from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

from audit.models import AuditEntry


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an API key (``key:<prefix>``), a user (``user:<name>``) or the system."""

    label: str

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        return cls(label=what)

    @classmethod
    def api_key(cls, prefix: str) -> Actor:
        return cls(label=f"key:{prefix}")

    @classmethod
    def user(cls, username: str) -> Actor:
        return cls(label=f"user:{username}")


def audit_record(
    *,
    actor: Actor,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry in the current tenant schema (call inside the change's transaction)."""
    return AuditEntry.objects.create(
        actor=actor.label,
        action=action,
        object_type=obj._meta.model_name or type(obj).__name__,
        object_id=str(obj.pk),
        before=before,
        after=after,
    )
