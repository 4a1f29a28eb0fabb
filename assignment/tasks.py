"""Celery tasks of the engine. Every tenant task takes ``schema_name`` first and runs inside it."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache
from django.db import ProgrammingError, connection
from django.db.migrations.executor import MigrationExecutor
from django_tenants.utils import schema_context

from assignment.services.identity import ForeignEngine
from assignment.services.sweep import sweep_tenant
from callcenter.logging import tenant_var
from tenants.selectors import tenant_list

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def sweep_all_tenants() -> int:
    """Fan out one sweep per tenant (beat runs this every second)."""
    schemas = list(tenant_list().values_list("schema_name", flat=True))
    for schema_name in schemas:
        sweep_tenant_task.delay(schema_name)
    return len(schemas)


@shared_task(ignore_result=True, acks_late=False)
def sweep_tenant_task(schema_name: str) -> None:
    # One sweep of a tenant at a time: a slow sweep is not stacked on by the next second's.
    lock = f"sweep-lock:{schema_name}"
    if not cache.add(lock, 1, 30):
        return
    token = tenant_var.set(schema_name)
    try:
        with schema_context(schema_name):
            try:
                report = sweep_tenant()
            except ForeignEngine:
                return  # logged with the reason; nothing of another deployment is touched
            except ProgrammingError:
                if not _migrations_pending():
                    raise
                # A tenant whose schema is still being created or migrated (tenant_create, migrate_schemas):
                # its tables are not all there yet; the next second's sweep gets it once they are.
                logger.debug("sweep: %s skipped, its schema is not fully migrated yet", schema_name)
                return

            if report.abandoned or report.wrap_ups_ended or report.paired or report.rebuilt or report.overdue_completed:
                logger.info("sweep: %s", report)
    finally:
        tenant_var.reset(token)
        cache.delete(lock)


def _migrations_pending() -> bool:
    """Whether the current schema lacks migrations (read only after an error: loading the graph is slow)."""
    executor = MigrationExecutor(connection)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))
