"""Tenant configuration: routing settings, agent types, call types and the conversion matrix.

The hot path reads a ``RoutingConfig`` snapshot, cached in the shared (Redis) cache until a change
deletes it, and in each process for ``CONFIG_CACHE_SECONDS`` (1 s): a configuration change is seen at
once by the process that made it and within a second by the others. Every write here clears both.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.cache import cache as shared_cache
from django.db import transaction

from agents.models import Agent, AgentType
from assignment.models import ROUTING_SETTINGS_ID, ConversionRate, RoutingSettings
from audit.services import audit_record
from callcenter.actors import Actor
from callcenter.errors import ApplicationError
from callcenter.tenancy import current_schema
from calls.models import Call, CallType
from events.registry import CONFIG_CHANGED
from events.services import event_record

CONFIG_CACHE_SECONDS = 1.0

DEFAULT_CALL_TYPES = ["llamada_tipo_1", "llamada_tipo_2", "llamada_tipo_3", "llamada_tipo_4"]
DEFAULT_MATRIX: dict[str, dict[str, float]] = {
    "agente_tipo_1": {"llamada_tipo_1": 0.30, "llamada_tipo_2": 0.20, "llamada_tipo_3": 0.10, "llamada_tipo_4": 0.05},
    "agente_tipo_2": {"llamada_tipo_1": 0.20, "llamada_tipo_2": 0.15, "llamada_tipo_3": 0.07, "llamada_tipo_4": 0.04},
    "agente_tipo_3": {"llamada_tipo_1": 0.10, "llamada_tipo_2": 0.12, "llamada_tipo_3": 0.25, "llamada_tipo_4": 0.08},
    "agente_tipo_4": {"llamada_tipo_1": 0.05, "llamada_tipo_2": 0.08, "llamada_tipo_3": 0.10, "llamada_tipo_4": 0.20},
}

SETTINGS_FIELDS = (
    "strategy",
    "max_queue_length",
    "max_wait_seconds",
    "wrap_up_seconds",
    "duration_model",
    "duration_mean_seconds",
    "duration_std_seconds",
    "duration_min_seconds",
    "duration_max_seconds",
    "time_scale",
    "max_assignment_time_ms",
    "service_level_seconds",
    "service_level_target",
)


@dataclass(frozen=True)
class RoutingConfig:
    """An immutable snapshot of a tenant's configuration, for the hot path."""

    schema_name: str
    settings: RoutingSettings
    call_types_by_slug: Mapping[str, CallType]
    call_types_by_id: Mapping[int, CallType]
    agent_types_by_id: Mapping[int, AgentType]
    type_ids: tuple[int, ...]
    p_ok: Mapping[tuple[int, int], float]
    loaded_at: float = field(default_factory=time.monotonic)

    def p_ok_by_agent_type(self, call_type_id: int) -> dict[int, float]:
        return {agent_type_id: self.p_ok[(agent_type_id, call_type_id)] for agent_type_id in self.type_ids}

    def matrix_by_slug(self) -> dict[str, dict[str, float]]:
        return {
            agent_type.slug: {
                call_type.slug: self.p_ok[(agent_type.id, call_type.id)]
                for call_type in sorted(self.call_types_by_id.values(), key=lambda c: c.slug)
            }
            for agent_type in sorted(self.agent_types_by_id.values(), key=lambda a: a.slug)
        }


_local = threading.local()

# Settings a simulation runs with, in place of the tenant's, in the current context only: the
# tenant's real traffic keeps its own settings while a simulation tries others.
_overrides: ContextVar[tuple[tuple[str, Any], ...] | None] = ContextVar("routing_overrides", default=None)
# (base snapshot, its overridden copy): the base is held, so its id is not reused while stored.
_overridden: dict[tuple[int, tuple[tuple[str, Any], ...]], tuple[RoutingConfig, RoutingConfig]] = {}


@contextmanager
def routing_overrides(changes: Mapping[str, Any] | None) -> Iterator[None]:
    """Within the block, ``routing_config()`` answers with ``changes`` applied to the tenant's
    settings (nothing is written). The matrix, types and the other settings stay live."""
    unknown = set(changes or {}) - set(SETTINGS_FIELDS)
    if unknown:
        raise ApplicationError(code="validation_error", message=f"Unknown settings {sorted(unknown)}.")
    token = _overrides.set(tuple(sorted((changes or {}).items())) or None)
    try:
        yield
    finally:
        _overrides.reset(token)


def _with_overrides(config: RoutingConfig) -> RoutingConfig:
    changes = _overrides.get()
    if not changes:
        return config
    key = (id(config), changes)
    entry = _overridden.get(key)
    if entry is not None and entry[0] is config:
        return entry[1]
    settings = copy.copy(config.settings)
    for name, value in changes:
        setattr(settings, name, value)
    found = replace(config, settings=settings)
    if len(_overridden) > 64:
        _overridden.clear()
    _overridden[key] = (config, found)
    return found


def _cache() -> dict[str, RoutingConfig]:
    cache: dict[str, RoutingConfig] | None = getattr(_local, "configs", None)
    if cache is None:
        cache = {}
        _local.configs = cache
    return cache


def _shared_key(schema_name: str) -> str:
    return f"routing-config:v1:{schema_name}"


def routing_config(*, force: bool = False) -> RoutingConfig:
    """The current tenant's configuration (with the simulation's ``routing_overrides`` applied)."""
    return _with_overrides(_routing_config(force=force))


def _routing_config(*, force: bool = False) -> RoutingConfig:
    """The current tenant's configuration snapshot: kept in the process for ``CONFIG_CACHE_SECONDS``
    and in the shared cache until a configuration change deletes it, so a request of a tenant that
    this process has not served for a while costs one cache read, not four queries."""
    schema_name = current_schema()
    local = _cache()
    cached = local.get(schema_name)
    if cached is not None and not force and time.monotonic() - cached.loaded_at < CONFIG_CACHE_SECONDS:
        return cached
    if not force:
        shared = shared_cache.get(_shared_key(schema_name))
        if isinstance(shared, RoutingConfig):
            config = replace(shared, loaded_at=time.monotonic())
            local[schema_name] = config
            return config
    settings = RoutingSettings.objects.get_or_create(id=ROUTING_SETTINGS_ID)[0]
    call_types = list(CallType.objects.all())
    agent_types = list(AgentType.objects.all())
    p_ok = {(rate.agent_type_id, rate.call_type_id): rate.p_ok for rate in ConversionRate.objects.all()}
    config = RoutingConfig(
        schema_name=schema_name,
        settings=settings,
        call_types_by_slug={c.slug: c for c in call_types},
        call_types_by_id={c.id: c for c in call_types},
        agent_types_by_id={a.id: a for a in agent_types},
        type_ids=tuple(sorted(a.id for a in agent_types)),
        p_ok=p_ok,
    )
    local[schema_name] = config
    if not transaction.get_connection().in_atomic_block:
        # Inside a transaction the rows read may not be committed (or may yet roll back): share
        # only what every other process can also see.
        shared_cache.set(_shared_key(schema_name), config, 3600)
    return config


def routing_config_forget() -> None:
    schema_name = current_schema()
    _cache().pop(schema_name, None)
    shared_cache.delete(_shared_key(schema_name))


def _record_change(
    *,
    actor: Actor,
    action: str,
    obj: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """A configuration change is audited and announced (config.changed) in its transaction. The
    routing settings row is locked first: it serialises the tenant's configuration changes, so their
    events are numbered in commit order."""
    audit_record(actor=actor, action=action, obj=obj, before=before, after=after)
    RoutingSettings.objects.select_for_update().filter(id=ROUTING_SETTINGS_ID).values_list("id").first()
    event_record(
        event_type=CONFIG_CHANGED,
        object_type="config",
        object_id="routing",
        subject=obj,
        payload=lambda: {
            "change": action,
            "object_type": obj._meta.model_name,
            "object_id": str(obj.pk),
            "before": before,
            "after": after,
        },
    )


def _after_config_change() -> None:
    routing_config_forget()
    transaction.on_commit(routing_config_forget)


def config_seed_defaults() -> None:
    """The defaults of SPEC §2 for a new tenant (current schema): four call types at 25 % each,
    four agent types, the reference conversion matrix and default routing settings."""
    with transaction.atomic():
        RoutingSettings.objects.get_or_create(id=ROUTING_SETTINGS_ID)
        call_types = {
            slug: CallType.objects.get_or_create(
                slug=slug, defaults={"name": slug.replace("_", " ").capitalize(), "mix_weight": 0.25}
            )[0]
            for slug in DEFAULT_CALL_TYPES
        }
        for agent_slug, row in DEFAULT_MATRIX.items():
            agent_type = AgentType.objects.get_or_create(
                slug=agent_slug, defaults={"name": agent_slug.replace("_", " ").capitalize()}
            )[0]
            for call_slug, p_ok in row.items():
                ConversionRate.objects.get_or_create(
                    agent_type=agent_type, call_type=call_types[call_slug], defaults={"p_ok": p_ok}
                )
    _after_config_change()


def _settings_as_dict(settings: RoutingSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in SETTINGS_FIELDS}


def routing_settings_check(*, settings: RoutingSettings) -> None:
    """The rules between fields (each field's own range is checked by the API or the admin form)."""
    if settings.duration_max_seconds <= settings.duration_min_seconds:
        raise ApplicationError(
            code="validation_error",
            message="duration_max_seconds must be greater than duration_min_seconds.",
            errors=[
                {"field": "duration_max_seconds", "message": "must exceed duration_min_seconds", "code": "invalid"}
            ],
        )
    if not settings.duration_min_seconds <= settings.duration_mean_seconds <= settings.duration_max_seconds:
        raise ApplicationError(
            code="validation_error",
            message="duration_mean_seconds must lie within the duration bounds.",
            errors=[{"field": "duration_mean_seconds", "message": "must lie within the bounds", "code": "invalid"}],
        )


def routing_settings_update(*, changes: Mapping[str, Any], actor: Actor) -> RoutingSettings:
    """Update routing settings (already validated field by field) and check cross-field rules."""
    with transaction.atomic():
        settings = RoutingSettings.objects.select_for_update().get_or_create(id=ROUTING_SETTINGS_ID)[0]
        before = _settings_as_dict(settings)
        for name, value in changes.items():
            if name not in SETTINGS_FIELDS:
                raise ApplicationError(code="validation_error", message=f"Unknown setting {name!r}.")
            setattr(settings, name, value)
        routing_settings_check(settings=settings)
        settings.save()
        after = _settings_as_dict(settings)
        if before != after:
            _record_change(actor=actor, action="config.update", obj=settings, before=before, after=after)
        _after_config_change()
    return settings


def call_type_mix_update(*, mix: Mapping[str, float], actor: Actor) -> None:
    """Set the simulated call-type mix: every call type exactly once, weights >= 0, sum > 0."""
    call_types = {c.slug: c for c in CallType.objects.all()}
    _require_exact_keys(mix, call_types, field="call_type_mix")
    if any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
        raise ApplicationError(
            code="validation_error", message="call_type_mix weights must be >= 0 with a positive sum."
        )
    total = float(sum(mix.values()))
    with transaction.atomic():
        before = {slug: c.mix_weight for slug, c in call_types.items()}
        for slug, weight in mix.items():
            CallType.objects.filter(pk=call_types[slug].pk).update(mix_weight=float(weight) / total)
        after = {slug: float(w) / total for slug, w in mix.items()}
        if before != after:
            _record_change(
                actor=actor,
                action="config.call_type_mix",
                obj=RoutingSettings(id=ROUTING_SETTINGS_ID),
                before=before,
                after=after,
            )
        _after_config_change()


def _require_exact_keys(given: Mapping[str, Any], known: Mapping[str, Any], *, field: str) -> None:
    unknown = sorted(set(given) - set(known))
    missing = sorted(set(known) - set(given))
    errors = [{"field": f"{field}.{k}", "message": "unknown type", "code": "unknown_type"} for k in unknown]
    errors += [{"field": f"{field}.{k}", "message": "missing", "code": "missing_cell"} for k in missing]
    if errors:
        raise ApplicationError(
            code="matrix_incomplete" if missing and not unknown else "unknown_type",
            message=f"{field} must name every type exactly once"
            + (f"; missing {missing}" if missing else "")
            + (f"; unknown {unknown}" if unknown else ""),
            errors=errors,
        )


def _check_rate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise ApplicationError(
            code="validation_error",
            message=f"{where} must be a number in [0, 1].",
            errors=[{"field": where, "message": "must be a number in [0, 1]", "code": "out_of_range"}],
        )
    return float(value)


def conversion_matrix_update(*, matrix: Mapping[str, Mapping[str, Any]], actor: Actor) -> dict[str, dict[str, float]]:
    """Replace the whole matrix. Every (agent type, call type) cell must be given, in [0, 1]: a
    missing cell is an error here, at configuration time, never at call time."""
    agent_types = {a.slug: a for a in AgentType.objects.all()}
    call_types = {c.slug: c for c in CallType.objects.all()}
    _require_exact_keys(matrix, agent_types, field="matrix")
    values: dict[tuple[str, str], float] = {}
    for agent_slug, row in matrix.items():
        if not isinstance(row, Mapping):
            raise ApplicationError(code="validation_error", message=f"matrix.{agent_slug} must be an object.")
        _require_exact_keys(row, call_types, field=f"matrix.{agent_slug}")
        for call_slug, value in row.items():
            values[(agent_slug, call_slug)] = _check_rate(value, f"matrix.{agent_slug}.{call_slug}")
    with transaction.atomic():
        before = {
            f"{r.agent_type.slug}/{r.call_type.slug}": r.p_ok
            for r in ConversionRate.objects.select_related("agent_type", "call_type")
        }
        for (agent_slug, call_slug), p_ok in values.items():
            ConversionRate.objects.update_or_create(
                agent_type=agent_types[agent_slug], call_type=call_types[call_slug], defaults={"p_ok": p_ok}
            )
        after = {f"{a}/{c}": p for (a, c), p in values.items()}
        if before != after:
            _record_change(
                actor=actor,
                action="config.conversion_matrix",
                obj=RoutingSettings(id=ROUTING_SETTINGS_ID),
                before=before,
                after=after,
            )
        _after_config_change()
    return {a: {c: values[(a, c)] for c in sorted(call_types)} for a in sorted(agent_types)}


def _type_rates(rates: Mapping[str, Any] | None, others: Mapping[str, Any], field: str) -> dict[str, float]:
    rates = rates or {}
    _require_exact_keys(rates, others, field=field)
    return {slug: _check_rate(value, f"{field}.{slug}") for slug, value in rates.items()}


def agent_type_create(*, slug: str, name: str, conversion_rates: Mapping[str, Any] | None, actor: Actor) -> AgentType:
    """A new agent type with its row of the matrix: one rate per existing call type (all required)."""
    call_types = {c.slug: c for c in CallType.objects.all()}
    rates = _type_rates(conversion_rates, call_types, "conversion_rates")
    if AgentType.objects.filter(slug=slug).exists():
        raise ApplicationError(code="agent_type_exists", message=f"Agent type {slug!r} already exists.", status=409)
    with transaction.atomic():
        agent_type = AgentType.objects.create(slug=slug, name=name)
        ConversionRate.objects.bulk_create(
            ConversionRate(agent_type=agent_type, call_type=call_types[s], p_ok=p) for s, p in rates.items()
        )
        _record_change(
            actor=actor, action="agent_type.create", obj=agent_type, after={"slug": slug, "name": name, "rates": rates}
        )
        _after_config_change()
    return agent_type


def call_type_create(
    *, slug: str, name: str, mix_weight: float, conversion_rates: Mapping[str, Any] | None, actor: Actor
) -> CallType:
    """A new call type with its column of the matrix: one rate per existing agent type (all required)."""
    agent_types = {a.slug: a for a in AgentType.objects.all()}
    rates = _type_rates(conversion_rates, agent_types, "conversion_rates")
    if CallType.objects.filter(slug=slug).exists():
        raise ApplicationError(code="call_type_exists", message=f"Call type {slug!r} already exists.", status=409)
    with transaction.atomic():
        call_type = CallType.objects.create(slug=slug, name=name, mix_weight=mix_weight)
        ConversionRate.objects.bulk_create(
            ConversionRate(agent_type=agent_types[s], call_type=call_type, p_ok=p) for s, p in rates.items()
        )
        _record_change(
            actor=actor, action="call_type.create", obj=call_type, after={"slug": slug, "name": name, "rates": rates}
        )
        _after_config_change()
    return call_type


def type_rename(
    *, obj: AgentType | CallType, name: str | None, mix_weight: float | None, actor: Actor
) -> AgentType | CallType:
    """Rename an agent or call type (slugs are stable ids and do not change); set a call type's weight."""
    before = {"name": obj.name}
    if name is not None:
        obj.name = name
    if mix_weight is not None and isinstance(obj, CallType):
        before["mix_weight"] = obj.mix_weight  # type: ignore[assignment]
        obj.mix_weight = mix_weight
    with transaction.atomic():
        obj.save()
        after: dict[str, Any] = {"name": obj.name}
        if isinstance(obj, CallType):
            after["mix_weight"] = obj.mix_weight
        _record_change(actor=actor, action=f"{obj._meta.model_name}.update", obj=obj, before=before, after=after)
        _after_config_change()
    return obj


def agent_type_delete(*, agent_type: AgentType, actor: Actor) -> None:
    if Agent.objects.filter(agent_type=agent_type).exists():
        raise ApplicationError(
            code="agent_type_in_use", message="Agents of this type exist; move or remove them first.", status=409
        )
    if AgentType.objects.count() <= 1:
        raise ApplicationError(code="last_type", message="A tenant keeps at least one agent type.", status=409)
    with transaction.atomic():
        _record_change(actor=actor, action="agent_type.delete", obj=agent_type, before={"slug": agent_type.slug})
        agent_type.delete()
        _after_config_change()


def call_type_delete(*, call_type: CallType, actor: Actor) -> None:
    if Call.objects.filter(call_type=call_type).exists():
        raise ApplicationError(
            code="call_type_in_use",
            message="Calls of this type exist; a call type with history cannot be removed.",
            status=409,
        )
    if CallType.objects.count() <= 1:
        raise ApplicationError(code="last_type", message="A tenant keeps at least one call type.", status=409)
    with transaction.atomic():
        _record_change(actor=actor, action="call_type.delete", obj=call_type, before={"slug": call_type.slug})
        call_type.delete()
        _after_config_change()


def _seed_new_tenant(**kwargs: Any) -> None:
    config_seed_defaults()


def _forget_restored_tenant(**kwargs: Any) -> None:
    routing_config_forget()


def connect_tenant_hooks() -> None:
    """A new tenant starts with the defaults of SPEC §2; a restored one re-reads its configuration."""
    from tenants.signals import tenant_schema_created, tenant_schema_restored

    tenant_schema_created.connect(_seed_new_tenant, dispatch_uid="routing.seed_defaults")
    tenant_schema_restored.connect(_forget_restored_tenant, dispatch_uid="routing.forget_config")
