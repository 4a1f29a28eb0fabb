"""JSON log lines carrying the tenant and the request id of the request (or task) that wrote them."""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
tenant_var: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="-")

# Anything that looks like a phone number (E.164 or a long run of digits) is masked in log lines;
# UUIDs (call and agent ids, request ids) and digits inside longer words or hex strings are left
# whole: an id with stars in it is useless to whoever reads the log.
_UUID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
_PHONE = r"\+?\d[\d \-]{7,}\d"
_MASKABLE = re.compile(rf"(?<![\w-])(?:({_UUID})|({_PHONE}))(?![\w-])")


def mask_phone_numbers(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(0)
        number = match.group(2)
        return number[:3] + "***" + number[-2:]

    return _MASKABLE.sub(mask, text)


class ContextFilter(logging.Filter):
    """Adds the request id and the tenant; outside a request (tasks, commands) the tenant is the
    schema the database connection is on, so every line names its tenant."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        tenant = tenant_var.get()
        if tenant == "-":
            from django.db import connection

            tenant = str(getattr(connection, "schema_name", "-") or "-")
        record.tenant = tenant
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "tenant": getattr(record, "tenant", tenant_var.get()),
            "request_id": getattr(record, "request_id", request_id_var.get()),
            "message": mask_phone_numbers(record.getMessage()),
        }
        if record.exc_info:
            payload["exc"] = mask_phone_numbers(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


# Tasks that run every second or so (the sweeps, the completion of each simulated call, the tick of
# a live simulation started from the dashboard): Celery's
# "received", "succeeded" and beat's "sending due task" lines for them go to DEBUG, so that they do
# not bury everything else (the sweep itself logs at INFO whatever it repaired; failures stay ERROR).
ROUTINE_TASKS = (
    "assignment.tasks.sweep_all_tenants",
    "assignment.tasks.sweep_tenant_task",
    "sweep-every-second",
    "simulation.tasks.complete_simulated_call",
    "simulation.tasks.simulation_live_tick",
    "webhooks.tasks.webhooks_tick_all_tenants",
    "webhooks.tasks.webhooks_tick_task",
    "webhooks-every-second",
    "webhooks.tasks.webhook_deliver",
)


class RoutineTaskFilter(logging.Filter):
    """Demotes Celery's per-task INFO lines about routine tasks to DEBUG (shown with LOG_LEVEL=DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not any(name in record.getMessage() for name in ROUTINE_TASKS):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
