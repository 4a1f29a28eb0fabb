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


@shared_task(ignore_result=True, acks_late=True)
def simulation_live_tick(schema_name: str, run_id: str, sequence: int, offset: float) -> None:
    """Create a live run's due arrivals and queue the next tick (see ``simulation.control``)."""
    from simulation.control import simulation_live_tick_run

    token = tenant_var.set(schema_name)
    try:
        with schema_context(schema_name):
            simulation_live_tick_run(run_id=run_id, sequence=sequence, offset=offset)
    finally:
        tenant_var.reset(token)
