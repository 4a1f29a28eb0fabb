"""django-tenants' Postgres backend, without a ``SET search_path`` round trip before every query.

django-tenants runs ``SET search_path`` on every cursor unless ``TENANT_LIMIT_SET_CALLS`` is on, and
that setting is unsafe: ``SET`` is transactional, so a rolled-back savepoint silently restores the
previous search path while django-tenants still believes the new one is set, and the next queries
read another tenant's tables. Here the search path is remembered as django-tenants does, but the
memory is dropped on every rollback (of a transaction or a savepoint), which is exactly when
Postgres may have changed it behind our back. The next cursor then sets it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper

from callcenter.db import watchdog


class DatabaseWrapper(TenantDatabaseWrapper):
    """Also puts a client-side deadline on every round trip (see ``callcenter.db.watchdog``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(self._with_deadline)

    def _socket(self) -> int | None:
        try:
            return int(self.connection.pgconn.socket) if self.connection is not None else None
        except Exception:  # closed or broken: nothing to watch, the call fails on its own
            return None

    def _deadline_seconds(self) -> float:
        """Half a second past the server's statement_timeout (which normally fires first and keeps
        the connection); 0 (no deadline) when the statement timeout is off."""
        timeout = float(settings.DB_STATEMENT_TIMEOUT_MS) / 1000
        return timeout + 0.5 if timeout > 0 else 0.0

    def _with_deadline(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        with watchdog.deadline(self._socket(), self._deadline_seconds()):
            return execute(sql, params, many, context)

    def _commit(self) -> None:
        with watchdog.deadline(self._socket(), self._deadline_seconds()):
            super()._commit()

    def is_usable(self) -> bool:
        with watchdog.deadline(self._socket(), self._deadline_seconds()):
            return bool(super().is_usable())

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
        with watchdog.deadline(self._socket(), self._deadline_seconds()):
            super()._rollback()

    def _savepoint_rollback(self, sid: str) -> None:
        self.search_path_set_schemas = None
        super()._savepoint_rollback(sid)

    def close(self) -> None:
        self.search_path_set_schemas = None
        super().close()
