"""Reproducible draws for simulated calls.

Each call's duration and outcome come from their own random stream, seeded by the run's seed and
the call's id: the same run (same seed, same call ids) draws the same values whatever order the
calls are assigned in, on any worker.
"""

from __future__ import annotations

import uuid

import numpy as np

MAX_REDRAWS = 10_000


def _stream(seed: int, call_id: uuid.UUID, purpose: int) -> np.random.Generator:
    value = call_id.int
    return np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, value >> 64, value & 0xFFFFFFFFFFFFFFFF, purpose])


def draw_duration(
    *, seed: int, call_id: uuid.UUID, model: str, mean: float, std: float, low: float, high: float
) -> float:
    """Seconds of (simulated) talk: normal(mean, std) or exponential(mean), redrawn while outside
    [low, high], so the result follows the truncated distribution (default mean ≈ 232 s, not 180)."""
    rng = _stream(seed, call_id, 1)
    for _ in range(MAX_REDRAWS):
        value = float(rng.exponential(mean)) if model == "exponential" else float(rng.normal(mean, std))
        if low <= value <= high:
            return value
    raise ValueError(f"could not draw a duration within [{low}, {high}] from {model}({mean}, {std})")


def draw_outcome(*, seed: int, call_id: uuid.UUID, p_ok: float) -> str:
    """OK with probability ``p_ok``."""
    return "OK" if float(_stream(seed, call_id, 2).random()) < p_ok else "KO"


def call_ids(seed: int, count: int) -> list[uuid.UUID]:
    """The ids of a run's calls, in arrival order, from its seed."""
    rng = np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, 3])
    return [uuid.UUID(bytes=rng.bytes(16), version=4) for _ in range(count)]
