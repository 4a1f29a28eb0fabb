"""django-tenants' Postgres backend, without the round trips a request does not need.

**Search path.** django-tenants runs ``SET search_path`` on every cursor unless
``TENANT_LIMIT_SET_CALLS`` is on, and that setting is unsafe: ``SET`` is transactional, so a
rolled-back savepoint silently restores the previous search path while django-tenants still believes
the new one is set, and the next queries read another tenant's tables. Here the search path the
session really has is remembered (``_search_path_sent``), apart from django-tenants' own memory
(which ``set_tenant`` clears at every request): the ``SET`` is sent only when the path differs. The
memory is dropped on every rollback (of a transaction or a savepoint), which is exactly when
Postgres may have changed it behind our back, and on every new connection. A worker that serves
one tenant after another therefore sends one ``SET`` per change of tenant, not one per request.

**Health check.** With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before reusing a
connection in each request. Here the socket is looked at instead (a zero-timeout ``poll``, no round
trip): a server that closed the connection (a restart, a terminated backend, a proxy that dropped
it) has made the socket readable, since Postgres sends nothing unasked to an idle session otherwise;
only then is the real ``SELECT 1`` sent, and a dead connection is replaced before the request uses it.

**Transaction-level locks.** ``xact_locks`` names the ``pg_advisory_xact_lock*`` locks the current
transaction holds (``xact_lock_held``, ``xact_lock_note``), so that a lock taken early, in the
statement that also locks a row, is not asked for again later in the same transaction. Postgres
releases such locks at COMMIT, ROLLBACK and ROLLBACK TO SAVEPOINT; the names are forgotten then.
"""

from __future__ import annotations

import select
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
        self.xact_locks = frozenset()
        with watchdog.deadline(self._socket(), self._deadline_seconds()):
            super()._commit()

    # The search path this session has for sure (see the module docstring), or None.
    _search_path_sent: list[str] | None = None
    # The advisory locks the current transaction holds (see the module docstring).
    xact_locks: frozenset[str] = frozenset()

    def xact_lock_held(self, name: str) -> bool:
        return self.in_atomic_block and name in self.xact_locks

    def xact_lock_note(self, name: str) -> None:
        """Record that the current transaction took lock ``name`` (only inside a transaction: in
        autocommit, Postgres releases it at once)."""
        if self.in_atomic_block:
            self.xact_locks = self.xact_locks | {name}

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        socket = self._socket()
        if socket is None:
            return False
        poller = select.poll()
        poller.register(socket, select.POLLIN | select.POLLERR | select.POLLHUP)
        if not poller.poll(0):
            return True  # nothing arrived unasked: the server has not hung up
        with watchdog.deadline(socket, self._deadline_seconds()):
            return bool(super().is_usable())

    def _handle_search_path(self, cursor: Any = None) -> None:
        if self._setting_search_path or not self.schema_name:
            return super()._handle_search_path(cursor)
        wanted = self._get_cursor_search_paths()
        if self._search_path_sent == wanted:
            self.search_path_set_schemas = wanted
            return
        super()._handle_search_path(cursor)
        self._search_path_sent = self.search_path_set_schemas

    def _forget_what_postgres_undid(self) -> None:
        """At a rollback or a new connection: the search path and the transaction's locks may be gone."""
        self.search_path_set_schemas = None
        self._search_path_sent = None
        self.xact_locks = frozenset()

    def connect(self) -> None:
        self._forget_what_postgres_undid()
        super().connect()

    def _rollback(self) -> None:
        self._forget_what_postgres_undid()
        with watchdog.deadline(self._socket(), self._deadline_seconds()):
            super()._rollback()

    def _savepoint_rollback(self, sid: str) -> None:
        self._forget_what_postgres_undid()
        super()._savepoint_rollback(sid)

    def close(self) -> None:
        self._forget_what_postgres_undid()
        super().close()
