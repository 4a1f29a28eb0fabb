"""Statistics for the simulation report: the checks of SPEC §6, each with its test and tolerance.

Every check returns a dict with ``ok`` and the figures behind it, so the JSON report holds them all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

ALPHA = 0.05


def latency_check(values_ms: Sequence[float], threshold_ms: float) -> dict[str, Any]:
    """Assignment latency percentiles against the tenant's ``max_assignment_time_ms`` (p99 must be under)."""
    if not values_ms:
        return {"ok": True, "count": 0, "threshold_ms": threshold_ms}
    array = np.asarray(values_ms, dtype=float)
    p50, p95, p99 = (float(x) for x in np.percentile(array, [50, 95, 99]))
    return {
        "ok": p99 <= threshold_ms,
        "count": len(values_ms),
        "p50": round(p50, 3),
        "p95": round(p95, 3),
        "p99": round(p99, 3),
        "max": round(float(array.max()), 3),
        "threshold_ms": threshold_ms,
        "test": "p99 <= max_assignment_time_ms",
    }


def mix_check(observed: Mapping[str, int], weights: Mapping[str, float]) -> dict[str, Any]:
    """Chi-square goodness of fit of the call-type counts to the configured mix."""
    types = sorted(weights)
    counts = np.array([observed.get(t, 0) for t in types], dtype=float)
    total = counts.sum()
    share = np.array([weights[t] for t in types], dtype=float)
    share = share / share.sum()
    expected = share * total
    used = expected > 0
    if total == 0 or used.sum() < 2:
        return {"ok": True, "count": int(total), "test": "chi-square (not enough categories)"}
    statistic, p_value = stats.chisquare(counts[used], expected[used])
    return {
        "ok": bool(p_value >= ALPHA) and bool(np.all(counts[~used] == 0)),
        "test": "chi-square goodness of fit",
        "alpha": ALPHA,
        "statistic": round(float(statistic), 4),
        "p_value": round(float(p_value), 6),
        "observed": {t: int(c) for t, c in zip(types, counts, strict=True)},
        "expected": {t: round(float(e), 2) for t, e in zip(types, expected, strict=True)},
    }


def wilson_interval(successes: int, trials: int, z: float) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def conversion_check(
    cells: Mapping[tuple[str, str], tuple[int, int]], configured: Mapping[tuple[str, str], float]
) -> dict[str, Any]:
    """Per (agent type, call type) cell: the 95 % Wilson interval, Bonferroni-corrected over the
    cells that saw calls, must contain the configured P(OK)."""
    tested = [cell for cell, (_, n) in cells.items() if n > 0]
    family = max(1, len(tested))
    z = float(stats.norm.ppf(1 - ALPHA / (2 * family)))
    out: dict[str, Any] = {}
    ok = True
    for cell in sorted(cells):
        successes, trials = cells[cell]
        low, high = wilson_interval(successes, trials, z)
        rate = configured[cell]
        inside = trials == 0 or low <= rate <= high
        ok = ok and inside
        out[f"{cell[0]}/{cell[1]}"] = {
            "configured": rate,
            "observed": round(successes / trials, 4) if trials else None,
            "calls": trials,
            "ok_calls": successes,
            "interval": [round(low, 4), round(high, 4)],
            "ok": inside,
        }
    return {
        "ok": ok,
        "test": "Wilson interval, Bonferroni-corrected",
        "family_confidence": 1 - ALPHA,
        "cells_tested": len(tested),
        "z": round(z, 4),
        "cells": out,
    }


def truncated_distribution(model: str, mean: float, std: float, low: float, high: float) -> Any:
    """The distribution a redraw-outside-the-bounds sampler really follows."""
    if model == "exponential":
        # An exponential conditioned on [low, high] is (memoryless) low + an exponential cut at high - low.
        return stats.truncexpon(b=(high - low) / mean, loc=low, scale=mean)
    return stats.truncnorm(a=(low - mean) / std, b=(high - mean) / std, loc=mean, scale=std)


def duration_check(
    durations: Sequence[float], model: str, mean: float, std: float, low: float, high: float
) -> dict[str, Any]:
    """Kolmogorov-Smirnov test of the drawn durations against the truncated distribution."""
    distribution = truncated_distribution(model, mean, std, low, high)
    if len(durations) < 5:
        return {"ok": True, "count": len(durations), "test": "Kolmogorov-Smirnov (too few calls)"}
    statistic, p_value = stats.kstest(np.asarray(durations, dtype=float), distribution.cdf)
    return {
        "ok": bool(p_value >= ALPHA),
        "test": f"Kolmogorov-Smirnov against truncated {model}",
        "alpha": ALPHA,
        "statistic": round(float(statistic), 5),
        "p_value": round(float(p_value), 6),
        "count": len(durations),
        "sample_mean": round(float(np.mean(durations)), 3),
        "truncated_mean": round(float(distribution.mean()), 3),
        "configured_mean": mean,
    }


def erlang_c(arrival_rate: float, handle_time: float, agents: int) -> dict[str, float]:
    """Erlang C for an M/M/c queue: P(wait), average speed of answer, and helpers."""
    offered = arrival_rate * handle_time  # Erlangs
    if agents <= offered:
        return {"offered_erlangs": offered, "occupancy": 1.0, "p_wait": 1.0, "asa": math.inf}
    # Stable recursion for the Erlang B formula, then C from B.
    b = 1.0
    for k in range(1, agents + 1):
        b = offered * b / (k + offered * b)
    occupancy = offered / agents
    c = b / (1 - occupancy * (1 - b))
    asa = c * handle_time / (agents - offered)
    return {"offered_erlangs": offered, "occupancy": occupancy, "p_wait": c, "asa": asa}


def erlang_service_level(arrival_rate: float, handle_time: float, agents: int, seconds: float) -> float:
    """P(answered within ``seconds``) for M/M/c."""
    base = erlang_c(arrival_rate, handle_time, agents)
    if base["p_wait"] >= 1.0:
        return 0.0
    return 1 - base["p_wait"] * math.exp(-(agents - base["offered_erlangs"]) * seconds / handle_time)


def proportion_interval(successes: int, trials: int) -> tuple[float, float]:
    return wilson_interval(successes, trials, float(stats.norm.ppf(1 - ALPHA / 2)))


def batch_means_interval(values: Sequence[float], batches: int = 20) -> tuple[float, float, float]:
    """Mean and 95 % interval by batch means: successive waits in a queue are correlated, so the
    naive interval would be far too narrow. Values must be in arrival order."""
    array = np.asarray(values, dtype=float)
    if len(array) < batches * 5:
        batches = max(2, len(array) // 5)
    if len(array) < 10:
        mean = float(array.mean()) if len(array) else math.nan
        return mean, -math.inf, math.inf
    size = len(array) // batches
    means = array[: size * batches].reshape(batches, size).mean(axis=1)
    centre = float(means.mean())
    half = float(stats.t.ppf(1 - ALPHA / 2, batches - 1)) * float(means.std(ddof=1)) / math.sqrt(batches)
    return centre, centre - half, centre + half
