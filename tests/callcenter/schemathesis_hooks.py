"""Schemathesis hooks for the run over the tenant API (``tests/callcenter/test_schemathesis.py``;
``tests/callcenter/schemathesis.toml`` loads them).

Three of schemathesis' checks are replaced by versions that delegate to them and let through
exactly one kind of answer each, recognised by its body (not by status alone, which is what
schemathesis' own per-operation ``expected-statuses`` tuning would allow):

- ``positive_data_acceptance`` (ST202, "schema-valid request rejected"): a 400 or 422 whose codes
  are all rules that an OpenAPI document cannot state: a slug that must name one of the tenant's
  own types, a conversion matrix that must cover exactly the tenant's types, an opaque cursor, an
  ``Idempotency-Key`` (or ``external_id``) already used with another body by an earlier example,
  a webhook URL whose host must resolve to public addresses (the SSRF guard asks DNS),
  the order between two routing settings (``duration_min_seconds`` < ``duration_max_seconds``), and
  a webhook URL's host that is no DNS name (a label over 63 characters).
- ``not_a_server_error`` (ST101): the one 5xx the contract promises for valid input, ``POST /calls``
  answering 503 with the call in state ``SATURATED`` and a ``Retry-After`` (SPEC §4): the queue is
  full, e.g. after an example set ``max_queue_length`` to 0. Any other 5xx still fails.
- ``use_after_free`` (ST301, "deleted resource still available"): ``DELETE /calls/{id}`` cancels
  or hangs up a call, which stays in the call history (SPEC §4): ``GET /calls/{id}`` after it
  answers the call in its final state. Any other resource must be gone after its DELETE.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis.checks import not_a_server_error as builtin_not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance as builtin_positive_data_acceptance
from schemathesis.specs.openapi.checks import use_after_free as builtin_use_after_free

# Problem codes (or per-field codes of a validation_error) for rules beyond the document.
RULES_BEYOND_THE_DOCUMENT = frozenset(
    {
        "unknown_agent_type",  # agent_type must be one of the tenant's slugs (GET /agent-types)
        "unknown_call_type",  # call_type must be one of the tenant's slugs (GET /call-types)
        "unknown_type",  # a matrix or mix key that is not one of the tenant's types
        "matrix_incomplete",  # every agent type x call type cell, no more, no less
        "missing_cell",  # (per field, inside matrix_incomplete / unknown_type)
        "invalid_cursor",  # a cursor is opaque: only one taken from a page's links is valid
        "idempotency_key_reused",  # the key was sent earlier with another body (422, by design)
        "webhook_url_refused",  # a webhook URL's host must resolve, to public addresses only (DNS)
    }
)


def _problem(response: Any) -> dict[str, Any]:
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith("application/problem+json"):
        return {}
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# Rules between fields of one body (JSON Schema has no "less than another field"), by operation:
# the fields that a validation_error names with the code "invalid" for them.
RULES_BETWEEN_FIELDS = {
    ("PUT", "/config"): frozenset({"duration_max_seconds", "duration_mean_seconds"}),
    # A webhook URL's host is a DNS name (labels of at most 63 characters, 253 in all), which
    # ``format: uri`` (RFC 3986, any length of reg-name) does not state.
    ("POST", "/webhooks"): frozenset({"url"}),
    ("PATCH", "/webhooks/{endpoint_id}"): frozenset({"url"}),
}


def _rule_beyond_the_document(response: Any, case: Any) -> bool:
    if response.status_code not in (400, 422):
        return False
    problem = _problem(response)
    if problem.get("code") in RULES_BEYOND_THE_DOCUMENT:
        return True
    if problem.get("code") != "validation_error":
        return False
    between_fields = RULES_BETWEEN_FIELDS.get((case.method.upper(), case.operation.path), frozenset())
    errors = problem.get("errors") or []
    return bool(errors) and all(
        error.get("code") in RULES_BEYOND_THE_DOCUMENT
        or (error.get("code") == "invalid" and error.get("field") in between_fields)
        for error in errors
    )


@schemathesis.check
def positive_data_acceptance_but_tenant_rules(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schema-valid input is accepted, unless refused by a rule that depends on the tenant's data."""
    if _rule_beyond_the_document(response, case):
        return None
    return builtin_positive_data_acceptance(ctx, response, case)


def _saturated(response: Any, case: Any) -> bool:
    if (case.method.upper(), case.operation.path) != ("POST", "/calls") or response.status_code != 503:
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    retry_after = response.headers.get("retry-after", [""])[0]
    return isinstance(body, dict) and body.get("status") == "SATURATED" and retry_after.isdigit()


@schemathesis.check
def not_a_server_error_but_saturated(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, except the 503 SATURATED that POST /calls promises when the queue is full."""
    if _saturated(response, case):
        return None
    return builtin_not_a_server_error(ctx, response, case)


ENDED_CALL_STATUSES = frozenset({"COMPLETED", "CANCELLED", "ABANDONED", "SATURATED"})


def _ended_call(response: Any, case: Any) -> bool:
    if (case.method.upper(), case.operation.path) != ("GET", "/calls/{call_id}") or response.status_code != 200:
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") in ENDED_CALL_STATUSES


@schemathesis.check
def use_after_free_but_call_history(ctx: Any, response: Any, case: Any) -> bool | None:
    """A deleted resource is gone, except a call: DELETE ends it and it stays in the history."""
    if _ended_call(response, case):
        return None
    return builtin_use_after_free(ctx, response, case)
