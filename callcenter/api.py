"""Shared pieces of the thin API layer."""

from __future__ import annotations

from typing import Any

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
