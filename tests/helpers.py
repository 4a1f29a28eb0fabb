from __future__ import annotations

import json
from typing import Any

from django.test import Client


class ApiClient:
    """The HTTP API as an integrator sees it: JSON in and out, authenticated by an API key."""

    def __init__(self, *, key: str | None, host: str = "localhost") -> None:
        self.client = Client(HTTP_HOST=host)
        self.headers: dict[str, str] = {"Authorization": f"Bearer {key}"} if key else {}

    def request(
        self, method: str, path: str, body: Any = None, *, raw: str | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs: dict[str, Any] = {"headers": {**self.headers, **(headers or {})}}
        if data is not None:
            kwargs["data"] = data
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method.lower())(path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"].endswith(code)
    return body
