"""``SELECT ... FOR UPDATE OF`` a row and related rows, with their related rows read, in one
round trip whose SQL is built once per process.

The ORM can say the same (``select_for_update(of=...).select_related(...)``), but compiling that
query costs more Python time than the round trip itself on the hot path (completing a call: see
docs/performance.md). The rows come back as model instances with their related instances cached,
as ``select_related`` leaves them, and values go through each field's ``from_db_value`` (decryption
of encrypted fields included).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection, models

from callcenter.db.writes import quote

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class _Part:
    model: type[models.Model]
    alias: str
    parent: int | None  # index of the part whose foreign key leads here
    field_name: str  # that foreign key's name on the parent ("" for the root)
    fields: tuple[models.Field, ...]  # type: ignore[type-arg]


@functools.cache
def _plan(
    root: type[models.Model], related: tuple[str, ...], lock: tuple[str, ...], also: str | None
) -> tuple[str, tuple[_Part, ...]]:
    parts = [_Part(root, "t0", None, "", tuple(root._meta.concrete_fields))]
    by_path = {"": 0}
    joins = []
    for path in related:
        parent_path, _, name = path.rpartition("__")
        parent_index = by_path[parent_path]
        parent = parts[parent_index]
        field = parent.model._meta.get_field(name)
        assert isinstance(field, models.ForeignKey)
        target = field.related_model
        assert isinstance(target, type) and issubclass(target, models.Model)
        alias = f"t{len(parts)}"
        target_pk = target._meta.pk
        assert target_pk is not None
        joins.append(
            f"JOIN {quote(target._meta.db_table)} {alias} "
            f"ON {alias}.{quote(target_pk.column)} = {parent.alias}.{quote(field.column)}"
        )
        by_path[path] = len(parts)
        parts.append(_Part(target, alias, parent_index, name, tuple(target._meta.concrete_fields)))
    columns = [f"{part.alias}.{quote(field.column)}" for part in parts for field in part.fields]
    root_pk = root._meta.pk
    assert root_pk is not None
    locked = ", ".join(parts[by_path[path]].alias for path in lock)
    if also is not None:
        columns.insert(0, f"({also}) IS NULL")
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(root._meta.db_table)} t0 {' '.join(joins)} "
        f"WHERE t0.{quote(root_pk.column)} = %s FOR UPDATE OF {locked}"
    )
    return sql, tuple(parts)


def lock_joined(
    root: type[M],
    *,
    pk: Any,
    related: Sequence[str],
    lock: Sequence[str] = ("",),
    also: tuple[str, Sequence[Any]] | None = None,
) -> M | None:
    """Lock the ``root`` row of primary key ``pk`` and the rows of the ``lock`` paths ("" is the root),
    reading the rows of every ``related`` path (``"agent"``, ``"agent__agent_type"``: foreign keys,
    joined with INNER JOIN, so a null foreign key finds nothing). ``also`` is an SQL expression (and
    its parameters) evaluated in the same statement before the rows are returned, e.g. an advisory
    lock. Returns the root instance, or None."""
    sql, parts = _plan(root, tuple(related), tuple(lock), also[0] if also is not None else None)
    params: list[Any] = list(also[1]) if also is not None else []
    root_pk = root._meta.pk
    assert root_pk is not None
    params.append(root_pk.get_db_prep_value(pk, connection, prepared=False))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row[1:] if also is not None else row)
    instances: list[models.Model] = []
    for part in parts:
        raw, values = values[: len(part.fields)], values[len(part.fields) :]
        converted = [
            field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
            for field, value in zip(part.fields, raw, strict=True)
        ]
        instance = part.model.from_db(connection.alias, [field.attname for field in part.fields], converted)
        if part.parent is not None:
            instances[part.parent]._state.fields_cache[part.field_name] = instance
        instances.append(instance)
    return instances[0]  # type: ignore[return-value]
