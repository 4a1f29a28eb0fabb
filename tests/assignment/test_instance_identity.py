"""One deployment per database: a process that finds Redis serving another deployment refuses to
sweep or rebuild, says why, and /health reports it."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from assignment import engine, keys
from assignment.services.identity import ForeignEngine, instance_forget_checks, instance_id, instance_verify
from assignment.services.recovery import engine_rebuild
from assignment.services.sweep import sweep_tenant
from assignment.tasks import sweep_tenant_task
from calls.models import Call
from tests.factories import make_call


@pytest.fixture
def foreign_redis():
    """Redis claimed by another deployment (as when two deployments share one database)."""
    instance_forget_checks()
    engine.client().set(keys.INSTANCE, str(uuid.uuid4()))
    yield
    engine.instance_forget()
    instance_forget_checks()


class InstanceIdentityTests:
    def test_redis_and_postgres_carry_the_same_instance_id(self, alpha) -> None:
        instance_forget_checks()
        instance_verify(force=True)
        assert engine.client().get(keys.INSTANCE) == instance_id()

    def test_an_emptied_redis_is_claimed_again(self, alpha) -> None:
        engine.instance_forget()
        instance_verify(force=True)
        assert engine.client().get(keys.INSTANCE) == instance_id()

    def test_it_refuses_to_rebuild_or_sweep_another_deployment_s_redis(self, in_alpha, foreign_redis, caplog) -> None:
        with caplog.at_level(logging.ERROR):
            with pytest.raises(ForeignEngine, match="another deployment"):
                engine_rebuild()
            with pytest.raises(ForeignEngine):
                sweep_tenant()
        assert "Point REDIS_URL at this deployment's Redis" in caplog.text

    def test_the_sweep_task_leaves_another_deployment_s_tenants_alone(self, alpha, foreign_redis) -> None:
        with schema_context(alpha.schema_name):
            from assignment.models import RoutingSettings
            from routing.services import routing_config_forget

            RoutingSettings.objects.update(max_wait_seconds=0)
            routing_config_forget()
            engine.instance_forget()
            instance_forget_checks()
            call = make_call()  # waits: no agent
            engine.client().set(keys.INSTANCE, str(uuid.uuid4()))
            instance_forget_checks()
        sweep_tenant_task(alpha.schema_name)
        with schema_context(alpha.schema_name):
            assert Call.objects.get(id=call.id).status == Call.Status.QUEUED  # not abandoned by a foreign sweep

    def test_health_says_why(self, alpha, foreign_redis) -> None:
        response = Client().get("/health")
        assert response.status_code == 503
        body = response.json()
        assert "redis" in body["down"] and "another deployment" in body["checks"]["redis"]["error"]
