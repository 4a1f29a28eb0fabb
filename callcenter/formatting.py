"""How the admin and the dashboard show figures to a person."""

from __future__ import annotations

import datetime

NOTHING = "\u2013"  # an en dash: no value


def minutes_seconds(seconds: float | None) -> str:
    """``179.13`` -> ``2:59``; an hour or more -> ``1:02:03``; nothing -> an en dash."""
    if seconds is None:
        return NOTHING
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def type_label(*, name: str, slug: str) -> str:
    """A type's display name beside its slug: ``Agente tipo 1 (agente_tipo_1)``."""
    return f"{name} ({slug})" if name and name != slug else slug


def count_noun(count: int, singular: str, plural: str | None = None) -> str:
    """``1, "run"`` -> ``1 run``; ``3, "run"`` -> ``3 runs``."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def api_datetime(value: datetime.datetime | None) -> str | None:
    """A timestamp as the REST API shows it (DRF's ISO 8601, UTC as ``Z``), for event payloads."""
    if value is None:
        return None
    text = value.astimezone(datetime.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
