"""One HTTP attempt: the body, the Standard Webhooks signature, the request to a checked address.

- Body: ``{"type", "timestamp", "data", "sequence"}``, compact JSON; ``data`` is the object as the API
  shows it; ``sequence`` numbers the object's events (order and deduplicate by it).
- Headers: ``webhook-id`` (the event id, the same on every retry), ``webhook-timestamp`` (this
  attempt, Unix seconds), ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``
  with the secret's base64-decoded bytes, one per secret in force, space-separated.
- The connection goes to the address the SSRF guard checked (``webhooks.ssrf``), with the URL's
  host in the Host header and in TLS SNI and certificate check. Redirects are not followed; the
  response is read up to ``RESPONSE_LIMIT_BYTES``; every phase has a timeout.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import secrets
import ssl
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from callcenter.errors import ApplicationError
from webhooks.ssrf import target_resolve

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # as Svix: 192 bits
RESPONSE_LIMIT_BYTES = 4096
EXCERPT_CHARS = 1000
USER_AGENT = "Callcenter-Webhooks/1.0"


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``{id}.{timestamp}.{body}`` keyed by the secret's bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def body_encode(*, event_type: str, occurred_at: datetime.datetime, data: Any, sequence: int | None) -> bytes:
    timestamp = occurred_at.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
    document = {"type": event_type, "timestamp": timestamp, "data": data, "sequence": sequence}
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def headers_sign(*, secrets_in_force: list[str], message_id: str, body: bytes, now: float) -> dict[str, str]:
    timestamp = int(now)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret=secret, message_id=message_id, timestamp=timestamp, body=body)
            for secret in secrets_in_force
        ),
    }


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """Built once per process: loading the CA bundle costs more than a whole local delivery."""
    return httpx.create_ssl_context()


@dataclass(frozen=True, slots=True)
class AttemptResult:
    succeeded: bool
    status_code: int | None
    latency_ms: float
    response_excerpt: str
    error: str


def post(*, url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
    """POST ``body`` to ``url`` once; a 2xx answer is a success. Never raises for the receiver's
    faults (refused address, DNS, timeout, reset, TLS): they are the result's ``error``."""
    started = time.perf_counter()

    def result(*, status_code: int | None = None, excerpt: str = "", error: str = "") -> AttemptResult:
        return AttemptResult(
            succeeded=status_code is not None and 200 <= status_code < 300,
            status_code=status_code,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            response_excerpt=excerpt,
            error=error[:500],
        )

    try:
        target = target_resolve(url)
    except ApplicationError as refused:
        return result(error=refused.message)
    host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    address = f"[{target.address}]" if ":" in target.address else target.address
    parts = httpx.URL(url)
    pinned = parts.copy_with(host=address.strip("[]"), port=target.port)
    timeout = httpx.Timeout(settings.WEBHOOKS_TIMEOUT_SECONDS)
    deadline = started + settings.WEBHOOKS_TIMEOUT_SECONDS * 2
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, verify=_tls_context()) as client,
            client.stream(
                "POST",
                pinned,
                content=body,
                headers={**headers, "host": host_header},
                extensions={"sni_hostname": target.host},
            ) as response,
        ):
            received = bytearray()
            for chunk in response.iter_raw():
                received += chunk
                if len(received) >= RESPONSE_LIMIT_BYTES or time.perf_counter() > deadline:
                    break
            excerpt = bytes(received[:RESPONSE_LIMIT_BYTES]).decode("utf-8", "replace")[:EXCERPT_CHARS]
            return result(status_code=response.status_code, excerpt=excerpt)
    except httpx.TimeoutException as exc:
        return result(error=f"timeout after {settings.WEBHOOKS_TIMEOUT_SECONDS:g} s ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        return result(error=f"{type(exc).__name__}: {exc}")
