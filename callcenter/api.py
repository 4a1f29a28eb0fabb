"""Shared pieces of the thin API layer."""

from __future__ import annotations

import functools
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from callcenter.errors import ApplicationError

# The JSON type each field accepts in a request body. DRF coerces by default ("123" for an
# integer, 123 for a string, "yes" for a boolean); the API documents JSON types, so it refuses the
# wrong type instead of guessing. BooleanField before IntegerField: bool is an int in Python.
_JSON_TYPES: list[tuple[type[serializers.Field], tuple[type, ...], str]] = [  # type: ignore[type-arg]
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.CharField, (str,), "a string"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.DecimalField, (int, float), "a number"),
]


def _json_type_error(field: serializers.Field, value: Any) -> str | None:  # type: ignore[type-arg]
    if value is None:
        return None  # null is the field's own business (allow_null)
    for field_class, types, name in _JSON_TYPES:
        if isinstance(field, field_class):
            if isinstance(value, bool) and bool not in types:
                return f"Must be {name}."
            return None if isinstance(value, types) else f"Must be {name}."
    return None


class StrictSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """An input serializer that refuses unknown fields (a typo must not be silently ignored) and,
    for a JSON body, values of the wrong JSON type. Query strings are all text, so those are
    converted as usual (``query_params`` passes ``strict_types=False``)."""

    def __init__(self, *args: Any, strict_types: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strict_types = strict_types

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown}, code="unknown_field")
            if self.strict_types:
                wrong = {
                    name: [message]
                    for name, field in self.fields.items()
                    if name in data and (message := _json_type_error(field, data[name]))
                }
                if wrong:
                    raise serializers.ValidationError(wrong, code="invalid_type")
        return super().to_internal_value(data)


class NumberField(serializers.FloatField):
    """A JSON number. DRF's FloatField takes ``true`` as 1.0 (``float(True)``); a rate or a
    setting sent as a boolean is a client bug, so it is refused like any other non-number."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


def validated(serializer_class: type[serializers.Serializer], request: Request, **kwargs: Any) -> dict[str, Any]:  # type: ignore[type-arg]
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def query_params(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:  # type: ignore[type-arg]
    strict: dict[str, Any] = {"strict_types": False} if issubclass(serializer_class, StrictSerializer) else {}
    serializer = serializer_class(data=request.query_params, **strict)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def not_found(what: str, code: str) -> ApplicationError:
    return ApplicationError(code=code, message=f"No such {what}.", status=404)


def composite(name: str, *views: type[APIView]) -> type[APIView]:
    """One view class for one path served by several single-operation APIs (GET list + POST create):
    each operation stays its own class, with its own serializers and schema."""
    # No docstring of its own: the document and OPTIONS would show it as every operation's description.
    return type(name, views, {"__doc__": ""})


class ProblemErrorSerializer(serializers.Serializer):  # type: ignore[type-arg]
    field = serializers.CharField(help_text="The field, dotted for nested ones; `non_field_errors` for the whole body.")
    message = serializers.CharField()
    code = serializers.CharField()


class ProblemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """An RFC 9457 problem: every error the API answers with (``application/problem+json``)."""

    type = serializers.CharField(help_text="A link to /problems, where each `code` is explained.")
    title = serializers.CharField(help_text="The HTTP status in words.")
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="What went wrong, in words.")
    code = serializers.CharField(help_text="Stable, machine-readable: see /problems.")
    instance = serializers.CharField(required=False, help_text="The request's path.")
    request_id = serializers.CharField(required=False, help_text="The X-Request-ID of the request.")
    errors = ProblemErrorSerializer(many=True, required=False, help_text="For invalid input: one entry per problem.")  # type: ignore[assignment]


@functools.cache
def _whitespace_class() -> str:
    """The characters ``str.strip()`` removes (``str.isspace``), as ranges for a regex class: spelt
    out because ``\\s`` differs between Python and ECMA (JSON Schema) regexes."""
    codes = [code for code in range(0x110000) if chr(code).isspace()]
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "".join(f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}" for low, high in ranges)


def text_pattern() -> str:
    """What a DRF CharField accepts, as a JSON Schema pattern: no NUL character anywhere (Postgres
    text cannot hold one) and, since surrounding whitespace is trimmed, one other character at least."""
    return f"^[^\\u0000]*[^\\u0000{_whitespace_class()}][^\\u0000]*$"


_HEADER = {"schema": {"type": "string"}}
_PROBLEM_DESCRIPTIONS = {
    "400": "Invalid input (`validation_error` with `errors`, `malformed_json`, ...).",
    "401": "No API key, or an unknown or revoked one.",
    "403": "The key's scope does not allow this (a `read` key may only GET).",
    "404": "No such object in your tenant.",
    "409": "The object's state does not allow this now.",
    "413": "The body is too large.",
    "415": "The body is not JSON.",
    "422": "The same Idempotency-Key (or external_id) came with another body.",
    "429": "Rate limit exceeded: retry after `Retry-After` seconds.",
    "503": "The assignment engine (Redis) or the database is unreachable; nothing changed.",
}


class AutoSchema(SpectacularAutoSchema):
    """Every operation's document also lists its problem+json error responses, the ``X-Request-ID``
    header of every response, ``Location`` on 201 and ``Retry-After`` on 429 and 503.

    Names a nested serializer after the API that owns it (``AgentCreateApi.InputSerializer`` ->
    ``AgentCreateInput``): by class name alone, every ``InputSerializer`` is one component and the
    document shows one API's body for all of them."""

    def _problem_statuses(self) -> list[str]:
        statuses = {"401", "403", "429", "503"}
        has_body = self.method in ("POST", "PUT", "PATCH")
        if has_body or any(parameter.get("in") == "query" for parameter in self._get_parameters()):
            statuses.add("400")
        if has_body:
            statuses |= {"413", "415"}
        if "{" in self.path:
            statuses.add("404")
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            statuses.add("409")
        extra = getattr(self.view, "problem_statuses", {}).get(self.method, set())
        statuses |= {str(status) for status in extra}
        return sorted(statuses)

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        problem = self.resolve_serializer(ProblemSerializer, "response").ref
        for status in self._problem_statuses():
            if status in responses:
                responses[status].setdefault("content", {})["application/problem+json"] = {"schema": problem}
                continue
            responses[status] = {
                "description": _PROBLEM_DESCRIPTIONS[status],
                "headers": self._get_response_headers_for_code(status, direction),
                "content": {"application/problem+json": {"schema": problem}},
            }
        return responses

    def _get_response_headers_for_code(self, status_code: Any, direction: Any = "response") -> dict[str, Any]:
        headers: dict[str, Any] = dict(super()._get_response_headers_for_code(status_code, direction))
        headers.setdefault(
            "X-Request-ID",
            {**_HEADER, "description": "This request's id (the one sent, or a new one); also in problem bodies."},
        )
        if str(status_code) in ("201", "202"):
            headers.setdefault("Location", {**_HEADER, "description": "The path of the created object."})
        if str(status_code) in ("429", "503"):
            headers.setdefault(
                "Retry-After", {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}
            )
        return headers

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super()._get_parameters()
        for parameter in parameters:
            if parameter.get("in") == "query" and not parameter.get("required"):
                # DRF reads an optional query parameter sent empty (`?status=`) as not sent at all.
                parameter["allowEmptyValue"] = True
        return parameters

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        text = (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and not field.allow_blank
            and not any(isinstance(validator, RegexValidator) for validator in field.validators)
            and schema.get("type") == "string"
        )
        if text and not {"pattern", "format", "enum"} & set(schema):
            schema["pattern"] = text_pattern()
        return schema

    def _map_serializer(self, serializer: Any, direction: Any, bypass_extensions: bool = False) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(serializer, StrictSerializer) and schema.get("type") == "object":
            # A StrictSerializer refuses unknown fields: the document says so, or a client (and
            # schemathesis) may believe an extra field is ignored.
            schema["additionalProperties"] = False
        return schema

    def get_serializer_name(self, serializer: serializers.Serializer, direction: str) -> str:  # type: ignore[type-arg]
        owner, _, name = type(serializer).__qualname__.rpartition(".")
        return f"{owner.removesuffix('Api')}{name}" if owner else name


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """The API key, in either of its two headers (one of them is enough)."""

    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = ["ApiKeyBearer", "ApiKeyHeader"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        return [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "A tenant's API key (`cc_<prefix>_<secret>`) as `Authorization: Bearer <key>`.",
            },
            {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The same key as `X-API-Key`."},
        ]


_HEALTH_CHECK = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["up", "down", "unknown"]},
        "ms": {"type": "number", "description": "How long the check took."},
        "count": {"type": "integer", "description": "Workers or beats seen alive (from their heartbeats)."},
        "last_seen_seconds_ago": {"type": "number"},
        "error": {"type": "string"},
    },
    "required": ["status"],
}
_HEALTH = {
    "type": "object",
    "properties": {
        "status": {
            "type": "string",
            "enum": ["ok", "degraded", "unavailable"],
            "description": "`degraded` (still 200): workers or beat missing; `unavailable` (503): Postgres or Redis.",
        },
        "down": {"type": "array", "items": {"type": "string"}, "description": "The checks that are not up."},
        "checks": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/HealthCheck"}},
    },
    "required": ["status", "down", "checks"],
}


def _public_get(operation_id: str, summary: str, description: str, responses: dict[str, Any]) -> dict[str, Any]:
    request_id = {**_HEADER, "description": "This request's id (the one sent, or a new one)."}
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "tags": ["health"],
            "security": [],  # public: no API key, no tenant
            "responses": {
                status: {
                    "description": text,
                    "headers": {"X-Request-ID": request_id},
                    "content": {"application/json": {"schema": schema}},
                }
                for status, (text, schema) in responses.items()
            },
        }
    }


def document_public_endpoints(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the health checks (plain Django views, public, see
    ``callcenter.health``) are part of the API an operator uses, so the document lists them, with
    no security requirement."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(HealthCheck=_HEALTH_CHECK, Health=_HEALTH)
    health = {"$ref": "#/components/schemas/Health"}
    result["paths"]["/health"] = _public_get(
        "health",
        "Readiness: Postgres and Redis answer (no API key)",
        "200 when the database and Redis answer (workers and beat missing make it `degraded`), else 503.",
        {"200": ("Ready.", health), "503": ("Postgres or Redis does not answer.", health)},
    )
    live = {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}, "required": ["status"]}
    result["paths"]["/health/live"] = _public_get(
        "health_live",
        "Liveness: the process answers (no API key)",
        "Checks nothing else on purpose: a database outage must not get healthy web processes restarted.",
        {"200": ("The process answers.", live)},
    )
    return result
