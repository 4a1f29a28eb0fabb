"""Reads of the audit log (the current tenant's schema)."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditEntry


def audit_list(
    *, actor: str | None = None, action: str | None = None, object_type: str | None = None, object_id: str | None = None
) -> QuerySet[AuditEntry]:
    """Newest first. ``actor`` and ``action`` match a prefix (``key:`` for every API key, ``agent.``
    for every agent change); the object filters match exactly."""
    entries = AuditEntry.objects.all()
    if actor:
        entries = entries.filter(actor__startswith=actor)
    if action:
        entries = entries.filter(action__startswith=action)
    if object_type:
        entries = entries.filter(object_type=object_type)
    if object_id:
        entries = entries.filter(object_id=object_id)
    return entries.order_by("-created_at", "-id")


def audit_get(*, entry_id: int) -> AuditEntry | None:
    if not 0 < entry_id < 2**63:  # past a bigint: no such row (and no database error)
        return None
    return AuditEntry.objects.filter(id=entry_id).first()
