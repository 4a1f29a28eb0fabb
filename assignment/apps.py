from django.apps import AppConfig


class AssignmentConfig(AppConfig):
    name = "assignment"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from assignment.metrics import observe_assigned_event
        from events.registry import CALL_ASSIGNED, Phase, subscribe

        subscribe(CALL_ASSIGNED, phase=Phase.ON_COMMIT, consumer=observe_assigned_event)
