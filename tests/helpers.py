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


def assert_no_event_lost() -> None:
    """In the current schema, the outbox tells every change: each call's and agent's events are
    numbered 1..n without a gap or a twin, and the last one shows the object as it is now (a call's
    event type matches its status)."""
    from collections import defaultdict

    from agents.models import Agent
    from calls.events import EVENT_OF_STATUS
    from calls.models import Call
    from events.models import OutboxEvent

    history: dict[tuple[str, str], list[tuple[int, str, dict[str, Any]]]] = defaultdict(list)
    for object_type, object_id, sequence, event_type, payload in OutboxEvent.objects.order_by("sequence").values_list(
        "object_type", "object_id", "sequence", "type", "payload"
    ):
        history[(object_type, object_id)].append((sequence, event_type, payload))
    for key, numbered in history.items():
        assert [sequence for sequence, _, _ in numbered] == list(range(1, len(numbered) + 1)), key
    for call_id, status in Call.objects.values_list("id", "status"):
        of_call = history.get(("call", str(call_id)))
        assert of_call, f"call {call_id} ({status}) has no event"
        _, last_type, last_payload = of_call[-1]
        assert last_type == EVENT_OF_STATUS[Call.Status(status)], (call_id, status, last_type)
        assert last_payload["status"] == status, (call_id, status, last_payload["status"])
    for agent_id, status in Agent.objects.values_list("id", "status"):
        of_agent = history.get(("agent", str(agent_id)))
        if of_agent:  # an agent that never changed status has no event
            assert of_agent[-1][2]["status"] == status, (agent_id, status, of_agent[-1][2]["status"])
