"""Shared pieces of the thin API layer."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from callcenter.errors import ApplicationError


class StrictSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """An input serializer that refuses unknown fields (a typo must not be silently ignored)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown}, code="unknown_field")
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
    serializer = serializer_class(data=request.query_params)
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
