from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class Strategy(models.TextChoices):
    LONGEST_IDLE = "longest_idle"
    BEST_CONVERSION = "best_conversion"
    ROUND_ROBIN = "round_robin"
    RANDOM = "random"


class DurationModel(models.TextChoices):
    NORMAL = "normal"
    EXPONENTIAL = "exponential"


class RoutingSettings(models.Model):
    """The tenant's routing settings: one row per tenant schema (pk is always 1)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.LONGEST_IDLE)
    max_queue_length = models.PositiveIntegerField(default=1000)
    max_wait_seconds = models.PositiveIntegerField(default=300)
    wrap_up_seconds = models.FloatField(default=0.0)
    duration_model = models.CharField(max_length=16, choices=DurationModel.choices, default=DurationModel.NORMAL)
    duration_mean_seconds = models.FloatField(default=180.0)
    duration_std_seconds = models.FloatField(default=180.0)
    duration_min_seconds = models.FloatField(default=1.0)
    duration_max_seconds = models.FloatField(default=3600.0)
    time_scale = models.FloatField(default=1.0)
    max_assignment_time_ms = models.FloatField(default=100.0)
    service_level_seconds = models.PositiveIntegerField(default=20)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "routing settings"
        verbose_name_plural = "routing settings"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="routing_settings_singleton"),
            models.CheckConstraint(condition=Q(wrap_up_seconds__gte=0), name="routing_wrap_up_nonneg"),
            models.CheckConstraint(condition=Q(duration_mean_seconds__gt=0), name="routing_mean_pos"),
            models.CheckConstraint(condition=Q(duration_std_seconds__gte=0), name="routing_std_nonneg"),
            models.CheckConstraint(condition=Q(duration_min_seconds__gte=0), name="routing_min_nonneg"),
            models.CheckConstraint(
                condition=Q(duration_max_seconds__gt=F("duration_min_seconds")), name="routing_bounds_ordered"
            ),
            models.CheckConstraint(condition=Q(time_scale__gt=0), name="routing_time_scale_pos"),
            models.CheckConstraint(condition=Q(max_assignment_time_ms__gt=0), name="routing_max_ms_pos"),
        ]

    def __str__(self) -> str:
        return "Routing settings"


class ConversionRate(models.Model):
    """P(OK) for one (agent type, call type) cell of the conversion matrix."""

    agent_type = models.ForeignKey("agents.AgentType", on_delete=models.CASCADE, related_name="conversion_rates")
    call_type = models.ForeignKey("calls.CallType", on_delete=models.CASCADE, related_name="conversion_rates")
    p_ok = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent_type__slug", "call_type__slug"]
        constraints = [
            models.UniqueConstraint(fields=["agent_type", "call_type"], name="conversion_cell_unique"),
            models.CheckConstraint(condition=Q(p_ok__gte=0) & Q(p_ok__lte=1), name="conversion_p_ok_0_1"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_type_id}x{self.call_type_id}={self.p_ok}"


class Assignment(models.Model):
    """One (call, agent) claim. Open while ``ended_at`` is null; at most one open per call and per agent."""

    call = models.ForeignKey("calls.Call", on_delete=models.CASCADE, related_name="assignments")
    agent = models.ForeignKey("agents.Agent", on_delete=models.SET_NULL, null=True, related_name="assignments")
    strategy = models.CharField(max_length=20, choices=Strategy.choices)
    candidates = models.PositiveIntegerField()
    latency_ms = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["call"], condition=Q(ended_at__isnull=True), name="assignment_open_per_call"
            ),
            models.UniqueConstraint(
                fields=["agent"], condition=Q(ended_at__isnull=True), name="assignment_open_per_agent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.call_id} -> {self.agent_id}"
