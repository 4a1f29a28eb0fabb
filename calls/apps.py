from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from agents.services import agent_active_call_ender_register
        from calls.services import agent_active_call_end, call_sweep_steps_register

        # A forced status change of a busy agent ends its call: the call lifecycle does it.
        agent_active_call_ender_register(agent_active_call_end)
        call_sweep_steps_register()
