"""The dashboard's controls. Each goes through the same service as the API does, so the engine,
the audit log and the webhooks see a change from the dashboard exactly as one from an integrator."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction

from agents.models import Agent
from agents.selectors import agent_get
from agents.services import agent_set_status
from callcenter.actors import Actor
from callcenter.errors import ApplicationError
from callcenter.passwords import password_generate
from dashboard.models import SUPERVISORS_GROUP
from simulation.control import LiveParameters, simulation_dashboard_run_running, simulation_start, simulation_stop
from simulation.models import SimulationRun


def dashboard_agent_set_status(*, agent_id: uuid.UUID, status: str, force: bool, actor: Actor) -> Agent:
    """Put an agent on BREAK, OFFLINE or AVAILABLE (``agents.services.agent_set_status``)."""
    agent = agent_get(agent_id=agent_id)
    if agent is None:
        raise ApplicationError(code="agent_not_found", message="No such agent.", status=404)
    return agent_set_status(agent=agent, status=status, force=force, actor=actor)


def dashboard_simulation_start(*, parameters: LiveParameters, actor: Actor) -> SimulationRun:
    return simulation_start(parameters=parameters, actor=actor)


def dashboard_simulation_stop(*, actor: Actor) -> SimulationRun:
    """Stop the running dashboard simulation; 409 ``simulation_not_running`` when none runs."""
    run = simulation_dashboard_run_running()
    if run is None:
        raise ApplicationError(code="simulation_not_running", message="No simulation is running.", status=409)
    return simulation_stop(run=run, actor=actor)


def supervisor_create(*, username: str, password: str | None = None) -> tuple[AbstractBaseUser, str]:
    """A supervisor of the current tenant: a user in the Supervisors group (the dashboard, with its
    controls; no admin access). Returns the user and its password (generated when not given)."""
    username = username.strip()
    if not username:
        raise ApplicationError(code="validation_error", message="username must not be empty.")
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        raise ApplicationError(code="user_exists", message=f"A user {username!r} already exists.", status=409)
    password = password or password_generate(12)
    with transaction.atomic():
        user = user_model.objects.create_user(username=username, password=password)
        user.groups.add(Group.objects.get(name=SUPERVISORS_GROUP))
    return user, password
