"""What `make run` prints once the web answers, and `make info` prints again: where to log in, the
API key and where the docs are. The credentials come from ``.local/demo-credentials.json``, which
``manage.py demo_setup`` writes (local development only)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings

CREDENTIALS = Path(settings.BASE_DIR) / ".local" / "demo-credentials.json"


def credentials_load() -> dict[str, Any]:
    return dict(json.loads(CREDENTIALS.read_text())) if CREDENTIALS.exists() else {}


def credentials_save(saved: dict[str, Any]) -> None:
    CREDENTIALS.parent.mkdir(parents=True, exist_ok=True)
    CREDENTIALS.write_text(json.dumps(saved, indent=2))
    CREDENTIALS.chmod(0o600)


def web_port() -> int:
    """The web server's port: ``$WEB_PORT``, else ``$PORT``, else the port of the last `make run`,
    else 8000."""
    return int(os.environ.get("WEB_PORT") or os.environ.get("PORT") or credentials_load().get("port") or 8000)


def banner_lines(*, port: int, slug: str = "demo") -> list[str]:
    saved = credentials_load()
    if not saved:
        return ["Nothing is set up yet: run `make run` (or `manage.py demo_setup`)."]
    slug = saved.get("slug", slug)
    public = f"localhost:{port}"
    tenant = f"{slug}.{settings.TENANT_BASE_DOMAIN}:{port}"
    key = saved["api_key"]
    return [
        f"Callcenter is running at http://{public}/",
        f"  Dashboard:      http://{tenant}/dashboard/   (login supervisor / {saved.get('supervisor_password', '…')})",
        f"  Tenant admin:   http://{tenant}/admin/   (login admin / {saved['admin_password']})",
        f"  Platform admin: http://{public}/admin/   (login platform / {saved['platform_password']})",
        f"  API docs:       http://{public}/docs   (ReDoc: /redoc, OpenAPI: /schema)",
        f"  API key:        {key}",
        f"  Try:            curl -H 'Authorization: Bearer {key}' http://{public}/agents",
        f"  Health:         http://{public}/health   Metrics: http://{public}/metrics",
    ]
