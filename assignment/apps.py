from typing import Any

from django.apps import AppConfig


def _rebuild_restored_tenant(**kwargs: Any) -> None:
    from assignment.services.recovery import engine_rebuild

    engine_rebuild()


class AssignmentConfig(AppConfig):
    name = "assignment"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from assignment.metrics import observe_assigned_event
        from events.registry import CALL_ASSIGNED, Phase, subscribe
        from tenants.signals import tenant_schema_restored

        subscribe(CALL_ASSIGNED, phase=Phase.ON_COMMIT, consumer=observe_assigned_event)
        # A restored schema's Redis state is rebuilt from what was restored.
        tenant_schema_restored.connect(_rebuild_restored_tenant, dispatch_uid="assignment.rebuild")
