"""URLs of a tenant (selected by API key or host). Paths are at the root, exactly as in SPEC §4."""

from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from agents import apis as agent_apis
from assignment import apis as engine_apis
from audit import apis as audit_apis
from callcenter.admin_sites import tenant_admin_site
from callcenter.api import composite
from callcenter.errors import handler404 as not_found
from callcenter.prometheus import prometheus_metrics
from callcenter.views import favicon, health, health_live, problems, root
from calls import apis as call_apis
from routing import apis as config_apis
from webhooks.urls import urlpatterns as webhook_urlpatterns

api_urlpatterns = [
    path(
        "agents",
        composite("AgentCollectionApi", agent_apis.AgentListApi, agent_apis.AgentCreateApi).as_view(),
        name="agents",
    ),
    path("agents/available", agent_apis.AgentAvailableListApi.as_view(), name="agents-available"),
    path(
        "agents/<uuid:agent_id>",
        composite(
            "AgentItemApi", agent_apis.AgentDetailApi, agent_apis.AgentUpdateApi, agent_apis.AgentDeleteApi
        ).as_view(),
        name="agent",
    ),
    path("agents/<uuid:agent_id>/status", agent_apis.AgentSetStatusApi.as_view(), name="agent-status"),
    path(
        "calls",
        composite("CallCollectionApi", call_apis.CallListApi, call_apis.CallCreateApi).as_view(),
        name="calls",
    ),
    path(
        "calls/<uuid:call_id>",
        composite("CallItemApi", call_apis.CallDetailApi, call_apis.CallCancelApi).as_view(),
        name="call",
    ),
    path("calls/<uuid:call_id>/complete", call_apis.CallCompleteApi.as_view(), name="call-complete"),
    *webhook_urlpatterns,
    path("audit", audit_apis.AuditListApi.as_view(), name="audit"),
    path("audit/<int:entry_id>", audit_apis.AuditDetailApi.as_view(), name="audit-entry"),
    path("system/status", engine_apis.SystemStatusApi.as_view(), name="system-status"),
    path("system/metrics", engine_apis.SystemMetricsApi.as_view(), name="system-metrics"),
    path("config", config_apis.ConfigApi.as_view(), name="config"),
    path("config/conversion-matrix", config_apis.ConversionMatrixApi.as_view(), name="conversion-matrix"),
    path(
        "agent-types",
        composite("AgentTypeCollectionApi", config_apis.AgentTypeListApi, config_apis.AgentTypeCreateApi).as_view(),
        name="agent-types",
    ),
    path(
        "agent-types/<slug:slug>",
        composite(
            "AgentTypeItemApi",
            config_apis.AgentTypeDetailApi,
            config_apis.AgentTypeUpdateApi,
            config_apis.AgentTypeDeleteApi,
        ).as_view(),
        name="agent-type",
    ),
    path(
        "call-types",
        composite("CallTypeCollectionApi", config_apis.CallTypeListApi, config_apis.CallTypeCreateApi).as_view(),
        name="call-types",
    ),
    path(
        "call-types/<slug:slug>",
        composite(
            "CallTypeItemApi",
            config_apis.CallTypeDetailApi,
            config_apis.CallTypeUpdateApi,
            config_apis.CallTypeDeleteApi,
        ).as_view(),
        name="call-type",
    ),
]

common_urlpatterns = [
    path("", root, name="root"),
    path("problems", problems, name="problems"),
    path("favicon.ico", favicon, name="favicon"),
    path("health", health, name="health"),
    path("health/live", health_live, name="health-live"),
    path("schema", SpectacularAPIView.as_view(urlconf="callcenter.urls"), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("metrics", prometheus_metrics, name="prometheus-metrics"),
]

urlpatterns = [
    *api_urlpatterns,
    *common_urlpatterns,
    path("admin/", tenant_admin_site.urls),
    path("dashboard", RedirectView.as_view(url="/dashboard/")),
    path("dashboard/", include("dashboard.urls")),
    # csrf_exempt: an unknown path is a 404 problem for every method, not Django's HTML CSRF 403.
    re_path(r"^.*$", csrf_exempt(not_found)),
]

handler404 = "callcenter.errors.handler404"
handler500 = "callcenter.errors.handler500"
handler400 = "callcenter.errors.handler400"
handler403 = "callcenter.errors.handler403"
