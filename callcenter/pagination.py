"""One shape for every list: ``{"results": [...], "next": <url or null>, "previous": <url or null>}``,
``limit`` for the page size (1-500, default 50), and ``next`` to follow until it is null.

- Calls page by cursor (``cursor``, opaque, taken from ``next``): new calls arrive while a client
  pages, and a cursor never shows a row twice or skips one because of them.
- Agents and types, whose lists barely move, also page by number (``page``) and give ``count``.
  A page past the end is an empty page, not an error.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

from callcenter.api import StrictSerializer
from callcenter.errors import ApplicationError

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


_LIMIT_HELP = f"Items per page, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT})."
_PAGE_SIZE_HELP = "Same as `limit` (its older name)."


class PageParams(StrictSerializer):
    """The query parameters of a page-numbered list (filters add their own fields).

    An API documents its query parameters with this serializer (``extend_schema(parameters=[...])``),
    so the OpenAPI document states exactly the bounds that validation enforces."""

    page = serializers.IntegerField(
        required=False, min_value=1, max_value=1_000_000, help_text="Page number, from 1. A page past the end is empty."
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, help_text=_LIMIT_HELP)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, help_text=_PAGE_SIZE_HELP)


class CursorParams(StrictSerializer):
    """The query parameters of a cursor-paged list (documented from this serializer too)."""

    cursor = serializers.CharField(
        required=False, max_length=200, help_text="Where to continue: take it from the `next` or `previous` link."
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, help_text=_LIMIT_HELP)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, help_text=_PAGE_SIZE_HELP)


def _limit(request: Request) -> int:
    """``limit``, else ``page_size`` (its older name), else the default (validated by the view)."""
    raw = request.query_params.get("limit") or request.query_params.get("page_size")
    return min(int(raw), MAX_LIMIT) if raw else DEFAULT_LIMIT


class Pagination(PageNumberPagination):
    """``?page=N&limit=M``."""

    page_size_query_param = "limit"

    def get_page_size(self, request: Request) -> int:
        return _limit(request)

    past_the_end = False

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound:
            # Past the end: an empty page whose `previous` leads to the last page.
            paginator = self.django_paginator_class(queryset, self.get_page_size(request))
            self.page = Page([], paginator.num_pages + 1, paginator)
            self.request = request
            self.past_the_end = True
            return []

    def get_previous_link(self) -> str | None:
        if not self.past_the_end:
            return super().get_previous_link()
        assert self.request is not None and self.page is not None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.page_query_param, self.page.paginator.num_pages)


class CallCursorPagination(CursorPagination):
    """Newest first, by cursor."""

    page_size_query_param = "limit"
    ordering = ("-created_at", "id")

    def get_page_size(self, request: Request) -> int:
        return _limit(request)

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound as error:
            raise ApplicationError(
                code="invalid_cursor",
                message="The cursor is not one this API gave: use the `next` or `previous` link of a page.",
                errors=[{"field": "cursor", "message": "invalid cursor", "code": "invalid_cursor"}],
            ) from error


def paginated(serializer: type[serializers.Serializer], *, name: str, counted: bool = True) -> serializers.Serializer:  # type: ignore[type-arg]
    """The OpenAPI shape of a page of ``serializer`` items."""
    fields: dict[str, serializers.Field] = {  # type: ignore[type-arg]
        "next": serializers.URLField(allow_null=True, help_text="The next page; null on the last one."),
        "previous": serializers.URLField(allow_null=True, help_text="The previous page; null on the first one."),
        "results": serializer(many=True),
    }
    if counted:
        fields = {"count": serializers.IntegerField(help_text="Items in the whole list."), **fields}
    return inline_serializer(name=name, fields=fields)
