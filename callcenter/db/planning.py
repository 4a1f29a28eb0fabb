"""Queries planned for their actual parameters every time, for reads whose best plan depends on
the values (lists filtered by an agent or a call type, whose share of the calls varies from most to
none).

The connection prepares a statement after its fifth use (``prepare_threshold``, see settings), and
Postgres then settles on a generic plan, made for an average value, once it is not much dearer than
the custom ones so far: right for the hot path's statements (one row by primary key), wrong for a
list filtered by a rare value, which the generic plan answers by walking the whole table (1,000,000
calls: 147 ms instead of 3 ms; docs/performance-scale.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def planned_each_time() -> Iterator[None]:
    """Within the block, the connection prepares no statement (each is planned for its values)."""
    connection.ensure_connection()
    raw = connection.connection
    saved = raw.prepare_threshold
    raw.prepare_threshold = None
    try:
        yield
    finally:
        if connection.connection is raw:  # not replaced meanwhile (a reconnect starts from the settings)
            raw.prepare_threshold = saved
