from __future__ import annotations

from django.db import models

SUPERVISORS_GROUP = "Supervisors"


class DashboardAccess(models.Model):
    """No table: only the holder of the dashboard's permissions (Django attaches permissions to a
    model). ``view_dashboard`` lets a user watch ``/dashboard/``; ``operate_dashboard`` adds the
    controls (agent status, simulations). The ``Supervisors`` group of every tenant has both."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_dashboard", "Can watch the supervisor dashboard"),
            ("operate_dashboard", "Can change agent status and run simulations from the dashboard"),
        ]

    def __str__(self) -> str:
        return "dashboard access"
