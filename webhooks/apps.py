from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from webhooks.services import webhook_consumers_register

        # From the outbox: delivery is slow I/O to third parties that must survive a crash and be
        # retried, and must never hold the change's transaction open (docs/webhooks.md).
        webhook_consumers_register()
