"""What the public-schema ``tenants`` app tells the tenant-schema apps, without importing them.

Each is sent inside ``schema_context(<the tenant's schema>)``. Receivers connect in their app's
``ready()``; a receiver that raises aborts the operation (``tenant_create`` then drops the schema).
"""

from __future__ import annotations

from django.dispatch import Signal

# A new tenant's schema exists and is migrated: seed its defaults (routing configuration...).
tenant_schema_created = Signal()
# A tenant's schema was restored from a backup: forget caches, rebuild the engine's Redis state.
tenant_schema_restored = Signal()
# An API key was issued or revoked (``actor``, ``action``, ``api_key``, ``before``, ``after``): the
# tenant's audit log records it.
apikey_changed = Signal()
