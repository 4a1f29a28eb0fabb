"""Every problem ``code`` the API answers with, and what it means. A problem's ``type`` is the URL
of its entry on ``/problems``, which the product serves (``callcenter.views.problems``)."""

from __future__ import annotations

# code -> (HTTP status, what happened and what to do)
PROBLEMS: dict[str, tuple[int, str]] = {
    "validation_error": (400, "The body or the query parameters are invalid; errors lists each field."),
    "malformed_json": (400, "The body is not valid JSON."),
    "bad_request": (400, "The request could not be understood."),
    "invalid_cursor": (400, "The cursor was not given by this API: follow a page's next or previous link."),
    "invalid_phone_number": (400, "The phone number is not a valid E.164 number (e.g. +34600123456)."),
    "unknown_call_type": (400, "No call type has this slug in your tenant (see GET /call-types)."),
    "unknown_agent_type": (400, "No agent type has this slug in your tenant (see GET /agent-types)."),
    "unknown_type": (400, "The conversion matrix names an agent or call type that does not exist."),
    "matrix_incomplete": (400, "Every agent type x call type cell of the conversion matrix is required."),
    "invalid_status": (400, "A new agent may only start OFFLINE, AVAILABLE or BREAK."),
    "invalid_status_transition": (
        400,
        "A client may set OFFLINE, AVAILABLE or BREAK; BUSY and WRAP_UP are the system's.",
    ),
    "invalid_slug": (400, "A slug is lowercase letters, digits and underscores."),
    "last_type": (409, "A tenant keeps at least one agent type and one call type."),
    "unknown_field": (400, "The body has a field this operation does not take (a typo?)."),
    "webhook_url_refused": (
        400,
        "A webhook URL must be http or https and resolve to public addresses only (no loopback, private, "
        "link-local or metadata address).",
    ),
    "unknown_event_type": (400, "No such webhook event type (see docs/webhooks.md)."),
    "invalid_type": (400, 'A value has the wrong JSON type (e.g. "5" where a number is expected).'),
    "not_authenticated": (401, "Send an API key: Authorization: Bearer <key> or X-API-Key: <key>."),
    "invalid_api_key": (401, "The API key is malformed, unknown or revoked."),
    "invalid_credentials": (401, "The credentials were refused."),
    "tenant_required": (401, "This host serves no tenant: send an API key or use your tenant's host."),
    "metrics_token_required": (401, "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>."),
    "permission_denied": (403, "The key's scope does not allow this (a read key may only GET)."),
    "not_found": (404, "No such resource or path."),
    "agent_not_found": (404, "No agent with this id in your tenant."),
    "call_not_found": (404, "No call with this id in your tenant."),
    "agent_type_not_found": (404, "No agent type with this slug in your tenant."),
    "call_type_not_found": (404, "No call type with this slug in your tenant."),
    "webhook_not_found": (404, "No webhook endpoint with this id in your tenant."),
    "webhook_message_not_found": (404, "No message with this id for this webhook endpoint."),
    "audit_entry_not_found": (404, "No audit entry with this id in your tenant."),
    "method_not_allowed": (405, "This path does not take this method; the Allow header lists those it takes."),
    "not_acceptable": (406, "The API answers JSON only."),
    "webhook_disabled": (409, "The webhook endpoint is disabled: enable it (PATCH enabled: true) first."),
    "agent_busy": (409, "The agent holds a call: send force: true to end it, or wait for the call to end."),
    "agent_not_off": (409, "An agent changes type only while OFFLINE or on BREAK."),
    "invalid_call_state": (409, "The call is not in a state this operation applies to (e.g. already ended)."),
    "agent_type_exists": (409, "An agent type with this slug exists already."),
    "call_type_exists": (409, "A call type with this slug exists already."),
    "agent_type_in_use": (409, "Agents still have this type: retype or remove them first."),
    "call_type_in_use": (409, "Calls have this type; it cannot be removed."),
    "tenant_exists": (409, "A tenant with this slug exists already."),
    "call_already_completed": (409, "The call was completed already, with another outcome."),
    "simulation_running": (409, "A simulation is running already: stop it first."),
    "simulation_not_running": (409, "No simulation is running."),
    "user_exists": (409, "A user with this name exists already."),
    "schema_exists": (409, "A tenant schema with this name exists already (restoring a backup)."),
    "backup_failed": (500, "A backup or restore step failed; its error is in detail."),
    "backup_unreadable": (400, "The backup folder is not a backup this product wrote."),
    "payload_too_large": (413, "The request body is larger than the server accepts."),
    "unsupported_media_type": (415, "Send the body as Content-Type: application/json."),
    "idempotency_key_reused": (422, "This Idempotency-Key (or external_id) was used with another body."),
    "rate_limited": (429, "Too many requests for this key: wait Retry-After seconds."),
    "internal_error": (500, "An unexpected error; the request_id helps us find it."),
    "engine_unavailable": (503, "The assignment engine (Redis) is unreachable; nothing changed. Retry shortly."),
    "database_unavailable": (
        503,
        "The database is unreachable or too slow; nothing changed. Retry after `Retry-After`.",
    ),
    "engine_busy": (503, "The assignment engine is being rebuilt; nothing changed. Retry after Retry-After."),
    "error": (400, "An error without a more specific code."),
}


def problem_type(code: str) -> str:
    """The ``type`` of a problem: the page that explains its code."""
    return f"/problems#{code}"
