"""``UPDATE ... RETURNING`` for a conditional update that also needs the updated row (Django 5.2's
``QuerySet.update`` returns a count only). One round trip instead of an UPDATE then a SELECT, for the
hot path, where the row goes into a domain event's payload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


def update_returning(model: type[M], *, where: Mapping[str, Any], values: Mapping[str, Any]) -> M | None:
    """``UPDATE <table> SET values WHERE where (all equal) RETURNING *``: the updated instance, or
    None when no row matched. ``where`` must select at most one row (it names the primary key)."""
    quote = connection.ops.quote_name
    meta = model._meta
    assignments, conditions, params = [], [], []
    for name, value in values.items():
        field = meta.get_field(name)
        assert isinstance(field, models.Field) and field.column
        assignments.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    for name, value in where.items():
        field = meta.get_field(name)
        assert isinstance(field, models.Field) and field.column
        conditions.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_value(value, connection, prepared=False))
    sql = f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} WHERE {' AND '.join(conditions)} RETURNING *"
    rows = list(model._default_manager.raw(sql, params))
    return rows[0] if rows else None
