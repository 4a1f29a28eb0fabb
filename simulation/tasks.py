"""Simulation tasks. Every task takes ``schema_name`` first and runs inside that schema."""

from __future__ import annotations

from celery import shared_task
from django_tenants.utils import schema_context

from callcenter.logging import tenant_var

# Imported when the worker starts (not on the first task), so the first completion is on time too.
from simulation.services import simulated_call_finish


@shared_task(ignore_result=True, acks_late=True)
def complete_simulated_call(schema_name: str, call_id: str) -> bool:
    """Complete a simulated call at its expected end (idempotent: a second run does nothing)."""
    token = tenant_var.set(schema_name)
    try:
        with schema_context(schema_name):
            return simulated_call_finish(call_id=call_id)
    finally:
        tenant_var.reset(token)
