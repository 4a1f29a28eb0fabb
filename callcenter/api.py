"""Shared pieces of the thin API layer."""

from __future__ import annotations

from typing import Any

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


class AutoSchema(SpectacularAutoSchema):
    """Names a nested serializer after the API that owns it (``AgentCreateApi.InputSerializer`` ->
    ``AgentCreateInput``): by class name alone, every ``InputSerializer`` is one component and the
    document shows one API's body for all of them."""

    def get_serializer_name(self, serializer: serializers.Serializer, direction: str) -> str:  # type: ignore[type-arg]
        owner, _, name = type(serializer).__qualname__.rpartition(".")
        return f"{owner.removesuffix('Api')}{name}" if owner else name
