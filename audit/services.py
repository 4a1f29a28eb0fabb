from __future__ import annotations

from typing import Any

from django.db import models

from audit.models import AuditEntry
from callcenter.actors import Actor
from callcenter.db.writes import insert


def audit_record(
    *,
    actor: Actor,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry in the current tenant schema (call inside the change's transaction)."""
    entry = AuditEntry(
        actor=actor.label,
        action=action,
        object_type=obj._meta.model_name or type(obj).__name__,
        object_id=str(obj.pk),
        before=before,
        after=after,
    )
    insert(entry)
    return entry


def _record_key_change(
    *,
    actor: Actor,
    action: str,
    api_key: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    audit_record(actor=actor, action=action, obj=api_key, before=before, after=after)


def connect_tenant_hooks() -> None:
    """Key management (public schema) is audited in the key's tenant (see ``tenants.signals``)."""
    from tenants.signals import apikey_changed

    apikey_changed.connect(_record_key_change, dispatch_uid="audit.apikey_changed")
