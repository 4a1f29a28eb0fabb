"""The webhook paths, included at the root by ``callcenter.urls``."""

from django.urls import path

from callcenter.api import composite
from webhooks import apis

urlpatterns = [
    path(
        "webhooks",
        composite("WebhookCollectionApi", apis.WebhookListApi, apis.WebhookCreateApi).as_view(),
        name="webhooks",
    ),
    path(
        "webhooks/<uuid:endpoint_id>",
        composite("WebhookItemApi", apis.WebhookDetailApi, apis.WebhookUpdateApi, apis.WebhookDeleteApi).as_view(),
        name="webhook",
    ),
    path(
        "webhooks/<uuid:endpoint_id>/rotate-secret", apis.WebhookRotateSecretApi.as_view(), name="webhook-rotate-secret"
    ),
    path("webhooks/<uuid:endpoint_id>/test", apis.WebhookTestApi.as_view(), name="webhook-test"),
    path("webhooks/<uuid:endpoint_id>/messages", apis.WebhookMessageListApi.as_view(), name="webhook-messages"),
    path("webhooks/<uuid:endpoint_id>/deliveries", apis.WebhookDeliveryListApi.as_view(), name="webhook-deliveries"),
    path(
        "webhooks/<uuid:endpoint_id>/messages/<uuid:message_id>",
        apis.WebhookMessageDetailApi.as_view(),
        name="webhook-message",
    ),
    path(
        "webhooks/<uuid:endpoint_id>/messages/<uuid:message_id>/redeliver",
        apis.WebhookMessageRedeliverApi.as_view(),
        name="webhook-message-redeliver",
    ),
]
