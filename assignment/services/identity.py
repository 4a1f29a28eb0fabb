"""One deployment per database: Postgres and Redis carry the same instance id.

Two deployments pointed at one database but at different Redis servers would each sweep and
rebuild the tenants from their own Redis and undo each other's work, unnoticed. So the database
holds an instance id (``tenants.InstanceIdentity``, created on first use) and Redis records the id
of the deployment it serves (``cc:instance``, claimed when Redis has none: a new or emptied Redis).
Before a sweep or a rebuild, a process compares the two; when Redis belongs to another deployment
it refuses, logs why, and ``/health`` reports Redis as down with the reason.

The comparison is cached for ``CHECK_SECONDS`` per process (one GET at most that often).
"""

from __future__ import annotations

import logging
import time
import uuid

from django.db import IntegrityError, transaction

from assignment import engine
from tenants.models import InstanceIdentity

logger = logging.getLogger(__name__)

CHECK_SECONDS = 5.0
_checked: dict[str, float] = {}


class ForeignEngine(engine.EngineUnavailable):
    """Redis serves another deployment (another database): refuse to touch it."""


def instance_id() -> str:
    """This deployment's id, from the database (created the first time)."""
    row = InstanceIdentity.objects.order_by("id").values_list("instance_id", flat=True).first()
    if row is not None:
        return str(row)
    try:
        with transaction.atomic():
            InstanceIdentity.objects.create(instance_id=uuid.uuid4())
    except IntegrityError:
        pass  # another process created it first
    return str(InstanceIdentity.objects.order_by("id").values_list("instance_id", flat=True).first())


def instance_verify(*, force: bool = False) -> None:
    """Raise ``ForeignEngine`` when Redis serves another deployment; claim an empty Redis."""
    ours = instance_id()
    now = time.monotonic()
    if not force and _checked.get(ours, 0.0) > now:
        return
    theirs = engine.instance_claim(instance_id=ours)
    if theirs != ours:
        _checked.pop(ours, None)
        message = (
            f"Redis serves another deployment (instance {theirs}; this database is instance {ours}): "
            "refusing to sweep or rebuild. Point REDIS_URL at this deployment's Redis."
        )
        logger.error(message)
        raise ForeignEngine(message)
    _checked[ours] = now + CHECK_SECONDS


def instance_forget_checks() -> None:
    _checked.clear()
