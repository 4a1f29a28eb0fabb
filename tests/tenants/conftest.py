from __future__ import annotations

from collections.abc import Iterator

import pytest

from tenants.models import ApiKey
from tenants.selectors import apikey_cache_forget


@pytest.fixture(autouse=True)
def _drop_keys_made_here(alpha: object) -> Iterator[None]:
    """Keys live in the public schema, which the per-test reset leaves alone: remove this test's."""
    last_id = ApiKey.objects.order_by("-id").values_list("id", flat=True).first() or 0
    yield
    for api_key in ApiKey.objects.filter(id__gt=last_id):
        api_key.delete()
        apikey_cache_forget(prefix=api_key.prefix)
