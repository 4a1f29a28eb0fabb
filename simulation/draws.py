"""Reproducible draws for simulated calls.

Each call's duration and outcome come from their own random stream, seeded by the run's seed and
the call's place in the run's arrivals: the same seed draws the same values whatever order the calls
are assigned in, on any worker.
"""

from __future__ import annotations

import numpy as np

MAX_REDRAWS = 10_000


def _stream(seed: int, sequence: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, sequence, purpose])


def draw_duration(*, seed: int, sequence: int, model: str, mean: float, std: float, low: float, high: float) -> float:
    """Seconds of (simulated) talk: normal(mean, std) or exponential(mean), redrawn while outside
    [low, high], so the result follows the truncated distribution (default mean ≈ 232 s, not 180)."""
    rng = _stream(seed, sequence, 1)
    for _ in range(MAX_REDRAWS):
        value = float(rng.exponential(mean)) if model == "exponential" else float(rng.normal(mean, std))
        if low <= value <= high:
            return value
    raise ValueError(f"could not draw a duration within [{low}, {high}] from {model}({mean}, {std})")


def draw_outcome(*, seed: int, sequence: int, p_ok: float) -> str:
    """OK with probability ``p_ok``."""
    return "OK" if float(_stream(seed, sequence, 2).random()) < p_ok else "KO"
