from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def allow_private(settings: Any) -> Any:
    """The receiver listens on 127.0.0.1: the SSRF guard lets it through in these tests only."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOKS_RETRY_SCHEDULE = [0.0, 0.0, 0.0]
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.5
    return settings


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Queued tasks run at once in this process (on commit), so a test drives delivery step by step."""
    from callcenter.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous
