"""Every index and unique constraint the tenant models declare exists in a tenant's schema, as the
migrations built it: a migration that drops one by accident (Django's AlterField on a foreign key
drops the single-column indexes it does not know, partial unique ones included) fails here."""

from __future__ import annotations

from django.apps import apps
from django.db import connection, models


def _declared(model: type[models.Model]) -> set[str]:
    names = {index.name for index in model._meta.indexes if index.name}
    names |= {c.name for c in model._meta.constraints if isinstance(c, models.UniqueConstraint)}
    return names


def test_every_declared_index_and_unique_constraint_exists_in_a_tenant_schema(alpha):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename, indexname FROM pg_indexes WHERE schemaname = %s", [alpha.schema_name])
        present: dict[str, set[str]] = {}
        for table, index in cursor.fetchall():
            present.setdefault(table, set()).add(index)
    checked = 0
    for model in apps.get_models():  # the public schema's tables are not in a tenant's: skipped below
        declared = _declared(model)
        if not declared or model._meta.db_table not in present:
            continue
        missing = declared - present[model._meta.db_table]
        assert not missing, f"{model._meta.label}: {sorted(missing)} missing from schema {alpha.schema_name}"
        checked += len(declared)
    assert checked >= 10  # the calls' and the assignments' indexes and constraints at least
