"""INSERT and UPDATE of one model instance with SQL built once per process (per model and list of
fields), for the hot path.

``Model.save()`` compiles its statement on every call, which costs more Python time than the round
trip (docs/performance.md, "Where the time goes"). These do what ``save(force_insert=True)`` and
``save(update_fields=...)`` do for the project's models: each field's ``pre_save`` (``auto_now``,
``auto_now_add``) and ``get_db_prep_save`` (encryption included), the primary key from RETURNING
when the database makes it. No model signals are sent: the project's models have no receivers
(a test keeps it so).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.db import DatabaseError, connection, models


def quote(name: str | None) -> str:
    """A table or column name quoted for the connection's SQL."""
    assert name is not None
    return str(connection.ops.quote_name(name))


@functools.cache
def _insert_plan(model: type[models.Model]) -> tuple[str, tuple[models.Field, ...], models.Field | None]:  # type: ignore[type-arg]
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    generated = pk if isinstance(pk, models.AutoField | models.BigAutoField | models.SmallAutoField) else None
    fields = tuple(f for f in meta.concrete_fields if f is not generated)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    if generated is not None:
        sql += f" RETURNING {quote(generated.column)}"
    return sql, fields, generated


def insert(instance: models.Model) -> None:
    """``instance.save(force_insert=True)``, in one precompiled statement."""
    sql, fields, generated = _insert_plan(type(instance))
    params = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if generated is not None:
            setattr(instance, generated.attname, cursor.fetchone()[0])
    instance._state.adding = False
    instance._state.db = connection.alias


@functools.cache
def _update_plan(model: type[models.Model], names: tuple[str, ...]) -> tuple[str, tuple[models.Field, ...]]:  # type: ignore[type-arg]
    meta = model._meta
    fields = tuple(meta.get_field(name) for name in names)
    assert all(isinstance(f, models.Field) and f.concrete for f in fields)
    pk = meta.pk
    assert pk is not None
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(f.column)} = %s' for f in fields)} "  # type: ignore[union-attr]
        f"WHERE {quote(pk.column)} = %s"
    )
    return sql, fields  # type: ignore[return-value]


def update_fields(instance: models.Model, names: Sequence[str]) -> None:
    """``instance.save(update_fields=names)``, in one precompiled statement (``auto_now`` fields
    among ``names`` get the current time, as with ``save``)."""
    sql, fields = _update_plan(type(instance), tuple(names))
    params: list[Any] = [field.get_db_prep_save(field.pre_save(instance, False), connection) for field in fields]
    pk = instance._meta.pk
    assert pk is not None
    params.append(pk.get_db_prep_value(instance.pk, connection, prepared=False))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != 1:
            raise DatabaseError(f"update of {instance._meta.label} {instance.pk} matched {cursor.rowcount} rows")
