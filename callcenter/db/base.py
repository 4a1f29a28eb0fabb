"""django-tenants' Postgres backend, without a ``SET search_path`` round trip before every query.

django-tenants runs ``SET search_path`` on every cursor unless ``TENANT_LIMIT_SET_CALLS`` is on, and
that setting is unsafe: ``SET`` is transactional, so a rolled-back savepoint silently restores the
previous search path while django-tenants still believes the new one is set, and the next queries
read another tenant's tables. Here the search path is remembered as django-tenants does, but the
memory is dropped on every rollback (of a transaction or a savepoint), which is exactly when
Postgres may have changed it behind our back. The next cursor then sets it again.
"""

from __future__ import annotations

from typing import Any

from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper


class DatabaseWrapper(TenantDatabaseWrapper):
    def _handle_search_path(self, cursor: Any = None) -> None:
        if (
            self.search_path_set_schemas is not None
            and self.schema_name
            and not self._setting_search_path
            and self.search_path_set_schemas == self._get_cursor_search_paths()
        ):
            return
        super()._handle_search_path(cursor)

    def _rollback(self) -> None:
        self.search_path_set_schemas = None
        super()._rollback()

    def _savepoint_rollback(self, sid: str) -> None:
        self.search_path_set_schemas = None
        super()._savepoint_rollback(sid)

    def close(self) -> None:
        self.search_path_set_schemas = None
        super().close()
