from django.apps import AppConfig


class RoutingAppConfig(AppConfig):
    """A tenant's routing configuration: settings, agent and call types, the conversion matrix.

    Its tables stay where they were first created (``assignment_routingsettings``,
    ``assignment_conversionrate``, ``agents_agenttype``, ``calls_calltype``): moving Django models
    between apps rewrites migrations of every tenant schema for no gain in behaviour. This app owns
    the code that reads and writes them; the models are its data."""

    name = "routing"

    def ready(self) -> None:
        from routing.services import connect_tenant_hooks

        connect_tenant_hooks()
