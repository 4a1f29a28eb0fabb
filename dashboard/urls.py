from django.contrib.auth.views import LogoutView
from django.urls import path

from dashboard import apis, views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard_page, name="index"),
    path("login/", views.DashboardLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page="/dashboard/login/"), name="logout"),
    path("api/state", apis.DashboardStateApi.as_view(), name="state"),
    path("api/agents/<uuid:agent_id>/status", apis.DashboardAgentStatusApi.as_view(), name="agent-status"),
    path("api/simulation/start", apis.DashboardSimulationStartApi.as_view(), name="simulation-start"),
    path("api/simulation/stop", apis.DashboardSimulationStopApi.as_view(), name="simulation-stop"),
]
