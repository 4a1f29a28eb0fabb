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


# The one row of RoutingSettings per tenant schema (a check constraint keeps it the only one).
ROUTING_SETTINGS_ID = 1


class RoutingSettings(models.Model):
    """The tenant's routing settings: one row per tenant schema (pk is always 1)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    # Routing
    strategy = models.CharField(
        "strategy",
        max_length=20,
        choices=Strategy.choices,
        default=Strategy.LONGEST_IDLE,
        help_text="How a new call picks among the free agents: the one idle longest (default), the agent type with "
        "the best conversion for the call's type, round robin, or at random.",
    )
    max_assignment_time_ms = models.FloatField(
        "assignment time alert (ms)",
        default=100.0,
        help_text="Alert threshold for the assignment time, in milliseconds: the dashboard and the Prometheus alert "
        "turn red above it.",
    )
    service_level_seconds = models.PositiveIntegerField(
        "service-level time (s)",
        default=20,
        help_text="A call answered within this many seconds of arriving counts towards the service level.",
    )
    service_level_target = models.FloatField(
        "service-level target",
        default=0.8,
        help_text="The share of calls to answer within the service-level time (0.8 = 80 %). The dashboard colours "
        "the service level against it and staffing studies look for the smallest staff that meets it.",
    )
    # Queue
    max_queue_length = models.PositiveIntegerField(
        "queue capacity (calls)",
        default=1000,
        help_text="How many calls may wait at once; a call arriving when it is full is rejected as SATURATED. "
        "0 rejects a call at once when nobody is free.",
    )
    max_wait_seconds = models.PositiveIntegerField(
        "longest wait (s)",
        default=300,
        help_text="A call that waits longer than this, in seconds, is ABANDONED (checked every second).",
    )
    wrap_up_seconds = models.FloatField(
        "wrap-up time (s)",
        default=0.0,
        help_text="Seconds an agent spends in WRAP_UP after each call before taking the next one.",
    )
    # Simulation
    duration_model = models.CharField(
        "talk-time model",
        max_length=16,
        choices=DurationModel.choices,
        default=DurationModel.NORMAL,
        help_text="Distribution of simulated talk time: normal (mean and standard deviation) or exponential (mean).",
    )
    duration_mean_seconds = models.FloatField(
        "mean talk time (s)",
        default=180.0,
        help_text="Mean simulated talk time in seconds, before the bounds below (with the defaults the effective "
        "mean is about 232 s, because short draws are redrawn).",
    )
    duration_std_seconds = models.FloatField(
        "talk-time standard deviation (s)",
        default=180.0,
        help_text="Standard deviation of simulated talk time in seconds (normal model only).",
    )
    duration_min_seconds = models.FloatField(
        "shortest call (s)", default=1.0, help_text="Shortest simulated call in seconds; a shorter draw is drawn again."
    )
    duration_max_seconds = models.FloatField(
        "longest call (s)", default=3600.0, help_text="Longest simulated call in seconds; a longer draw is drawn again."
    )
    time_scale = models.FloatField(
        "time scale",
        default=1.0,
        help_text="Simulated seconds per real second in live simulations (10 plays an hour of traffic in 6 minutes).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "routing settings"
        verbose_name_plural = "routing settings"
        constraints = [
            models.CheckConstraint(condition=Q(id=ROUTING_SETTINGS_ID), name="routing_settings_singleton"),
            models.CheckConstraint(condition=Q(wrap_up_seconds__gte=0), name="routing_wrap_up_nonneg"),
            models.CheckConstraint(condition=Q(duration_mean_seconds__gt=0), name="routing_mean_pos"),
            models.CheckConstraint(condition=Q(duration_std_seconds__gte=0), name="routing_std_nonneg"),
            models.CheckConstraint(condition=Q(duration_min_seconds__gte=0), name="routing_min_nonneg"),
            models.CheckConstraint(
                condition=Q(duration_max_seconds__gt=F("duration_min_seconds")), name="routing_bounds_ordered"
            ),
            models.CheckConstraint(condition=Q(time_scale__gt=0), name="routing_time_scale_pos"),
            models.CheckConstraint(condition=Q(max_assignment_time_ms__gt=0), name="routing_max_ms_pos"),
            models.CheckConstraint(
                condition=Q(service_level_target__gt=0) & Q(service_level_target__lte=1), name="routing_sl_target_0_1"
            ),
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
        verbose_name = "conversion matrix cell"
        verbose_name_plural = "conversion matrix"
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
