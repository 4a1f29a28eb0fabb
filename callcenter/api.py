"""Shared pieces of the thin API layer."""

from __future__ import annotations

from typing import Any

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
    return type(name, views, {"__doc__": " / ".join(v.__name__ for v in views)})


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
