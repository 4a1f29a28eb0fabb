"""Request body parsers (kept apart from ``callcenter.api``: DRF imports them while it loads)."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JsonParser(parsers.JSONParser):
    """DRF's JSON parser, but a body nested deeper than Python's recursion limit (a few KB of
    ``[[[[...``) is a 400 like any other malformed body, not a ``RecursionError`` and a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply") from exc
