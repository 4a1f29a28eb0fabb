"""Typed access to django-tenants' connection attributes (the stubs only know a plain connection)."""

from __future__ import annotations

from typing import Any

from django.db import connection


def tenant_connection() -> Any:
    """The default connection, with django-tenants' ``schema_name``, ``tenant``, ``set_tenant()``..."""
    return connection


def current_schema() -> str:
    return str(tenant_connection().schema_name)
