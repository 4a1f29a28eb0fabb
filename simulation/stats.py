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


LATENCY_INFO_NOTE = (
    "wall-clock time of this machine, which depends on its load: reported for information, "
    "not part of the verdict (simulated clock)"
)


def latency_check(values_ms: Sequence[float], threshold_ms: float, *, decides: bool = True) -> dict[str, Any]:
    """Assignment latency percentiles against the tenant's ``max_assignment_time_ms`` (p99 must be under).

    Assignment latency is wall-clock time: it measures the machine (its load, what else runs on
    it), not the routing. With ``decides=False`` (a run on the simulated clock, whose verdict is
    about the routing and must not change with the machine's load) the figures are reported as
    information: ``status`` is ``"info"``, ``ok`` is None (never a pass nor a fail), and
    ``exceeds_threshold`` says whether p99 was over the threshold."""
    base: dict[str, Any] = {"statistical": False, "count": len(values_ms), "threshold_ms": threshold_ms}
    if not decides:
        base["note"] = LATENCY_INFO_NOTE
    if not values_ms:
        return {**base, "ok": None, "status": "info" if not decides else "insufficient data"}
    array = np.asarray(values_ms, dtype=float)
    p50, p95, p99 = (float(x) for x in np.percentile(array, [50, 95, 99]))
    figures = {
        "p50": round(p50, 3),
        "p95": round(p95, 3),
        "p99": round(p99, 3),
        "max": round(float(array.max()), 3),
    }
    if not decides:
        return {
            **base,
            **figures,
            "ok": None,
            "status": "info",
            "exceeds_threshold": p99 > threshold_ms,
            "test": "p99 against max_assignment_time_ms, information only",
        }
    return {
        **base,
        **figures,
        "ok": p99 <= threshold_ms,
        "status": "pass" if p99 <= threshold_ms else "fail",
        "test": "p99 <= max_assignment_time_ms",
    }


MONTE_CARLO_DRAWS = 4999


def _monte_carlo_p(observed: float, simulated: np.ndarray) -> float:
    """(1 + #{simulated >= observed}) / (1 + N): a valid p-value for any N (never 0)."""
    exceed = int(np.count_nonzero(simulated >= observed - 1e-9 * max(1.0, abs(observed))))
    return (1 + exceed) / (1 + len(simulated))


def _rng(seed: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, 0xC0FFEE, purpose])


def mix_check(observed: Mapping[str, int], weights: Mapping[str, float], *, seed: int = 0) -> dict[str, Any]:
    """Chi-square goodness of fit of the call-type counts to the configured mix, its p-value by Monte
    Carlo (multinomial draws with the same total), so it holds at any count, even a few calls."""
    types = sorted(weights)
    counts = np.array([observed.get(t, 0) for t in types], dtype=float)
    total = int(counts.sum())
    share = np.array([weights[t] for t in types], dtype=float)
    share = share / share.sum()
    expected = share * total
    used = share > 0
    base: dict[str, Any] = {
        "test": "chi-square goodness of fit, Monte-Carlo p-value",
        "statistical": True,
        "count": total,
        "observed": {t: int(c) for t, c in zip(types, counts, strict=True)},
        "expected": {t: round(float(e), 2) for t, e in zip(types, expected, strict=True)},
    }
    if np.any(counts[~used] > 0):  # a call of a type configured at weight 0: impossible under the mix
        return {**base, "ok": False, "status": "fail", "p_value": 0.0, "note": "calls of a type weighted 0"}
    if total == 0 or used.sum() < 2:
        return {**base, "ok": None, "status": "insufficient data", "p_value": None}
    statistic = float(((counts[used] - expected[used]) ** 2 / expected[used]).sum())
    draws = _rng(seed, 1).multinomial(total, share[used], size=MONTE_CARLO_DRAWS).astype(float)
    simulated = ((draws - expected[used]) ** 2 / expected[used]).sum(axis=1)
    return {**base, "ok": True, "status": "pass", "statistic": round(statistic, 4), "p_value": _p(statistic, simulated)}


def _p(statistic: float, simulated: np.ndarray) -> float:
    return round(_monte_carlo_p(statistic, simulated), 6)


def wilson_interval(successes: int, trials: int, z: float) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _g_terms(successes: np.ndarray, trials: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per cell 2 * [k log(k / np) + (n - k) log((n - k) / n(1 - p))], with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = np.where(successes > 0, successes * np.log(successes / (trials * p)), 0.0)
        ko = np.where(
            trials - successes > 0, (trials - successes) * np.log((trials - successes) / (trials * (1 - p))), 0.0
        )
    return 2 * (ok + ko)


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down procedure: which hypotheses are rejected, family-wise error rate <= alpha."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] >= alpha / (len(p_values) - rank):
            break
        rejected[index] = True
    return rejected


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (reject at alpha when adjusted < alpha)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def conversion_check(
    cells: Mapping[tuple[str, str], tuple[int, int]],
    configured: Mapping[tuple[str, str], float],
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """One global test over all cells: the likelihood-ratio (G) statistic of the observed OK counts
    against the configured P(OK), its p-value by Monte Carlo (binomial draws with each cell's number
    of calls), so it holds at any count. Then, to point at the cells that are off, each cell's exact
    binomial p-value, Holm-adjusted over the cells.

    "insufficient data" when no outcome could reach significance: even the most extreme result
    (every call of every cell OK, or every one KO, whichever is rarer) is at least ALPHA likely."""
    names = sorted(cells)
    trials = np.array([cells[c][1] for c in names], dtype=float)
    successes = np.array([cells[c][0] for c in names], dtype=float)
    rates = np.array([configured[c] for c in names], dtype=float)
    out: dict[str, Any] = {}
    tested = trials > 0
    # The rarest possible result, cell by cell; the product is its probability under the matrix.
    with np.errstate(divide="ignore"):
        log_extreme = np.where(
            tested,
            np.maximum(trials * np.log(np.clip(rates, 1e-300, 1)), trials * np.log(np.clip(1 - rates, 1e-300, 1))),
            0.0,
        )
    base: dict[str, Any] = {
        "test": "likelihood ratio (G) over all cells, Monte-Carlo p-value; per cell exact binomial, Holm",
        "statistical": True,
        "cells_tested": int(tested.sum()),
        "calls": int(trials.sum()),
    }
    impossible = tested & (((rates <= 0) & (successes > 0)) | ((rates >= 1) & (successes < trials)))
    cell_p: list[float] = []
    for index, cell in enumerate(names):
        n, k, rate = int(trials[index]), int(successes[index]), float(rates[index])
        p_cell = (
            float(stats.binomtest(k, n, rate).pvalue) if n and 0 < rate < 1 else (0.0 if impossible[index] else 1.0)
        )
        cell_p.append(p_cell if n else 1.0)
        can_reject = n > 0 and float(log_extreme[index]) < math.log(ALPHA)
        out[f"{cell[0]}/{cell[1]}"] = {
            "configured": rate,
            "observed": round(k / n, 4) if n else None,
            "calls": n,
            "ok_calls": k,
            "p_value": round(p_cell, 6) if n else None,
            "status": "no calls" if not n else ("insufficient data" if not can_reject else "pass"),
        }
    adjusted = holm_adjusted([cell_p[i] for i in range(len(names)) if tested[i]])
    for position, index in enumerate(i for i in range(len(names)) if tested[i]):
        entry = out[f"{names[index][0]}/{names[index][1]}"]
        entry["p_holm"] = round(adjusted[position], 6)
        if adjusted[position] < ALPHA:
            entry["status"] = "off"
    for entry in out.values():
        entry["ok"] = entry["status"] != "off"
    base["cells"] = out
    if not tested.any() or float(log_extreme.sum()) >= math.log(ALPHA):
        return {**base, "ok": None, "status": "insufficient data", "p_value": None}
    if impossible.any():
        return {**base, "ok": False, "status": "fail", "p_value": 0.0, "statistic": math.inf}
    valid = tested & (rates > 0) & (rates < 1)
    statistic = float(_g_terms(successes[valid], trials[valid], rates[valid]).sum())
    draws = _rng(seed, 2).binomial(
        trials[valid].astype(np.int64), rates[valid], size=(MONTE_CARLO_DRAWS, int(valid.sum()))
    )
    simulated = _g_terms(draws.astype(float), trials[valid], rates[valid]).sum(axis=1)
    return {**base, "ok": True, "status": "pass", "statistic": round(statistic, 4), "p_value": _p(statistic, simulated)}


def truncated_distribution(model: str, mean: float, std: float, low: float, high: float) -> Any:
    """The distribution a redraw-outside-the-bounds sampler really follows."""
    if model == "exponential":
        # An exponential conditioned on [low, high] is (memoryless) low + an exponential cut at high - low.
        return stats.truncexpon(b=(high - low) / mean, loc=low, scale=mean)
    return stats.truncnorm(a=(low - mean) / std, b=(high - mean) / std, loc=mean, scale=std)


def duration_check(
    durations: Sequence[float], model: str, mean: float, std: float, low: float, high: float, *, what: str = "drawn"
) -> dict[str, Any]:
    """Kolmogorov-Smirnov test of durations against the truncated distribution (exact p-value for
    small samples)."""
    distribution = truncated_distribution(model, mean, std, low, high)
    base: dict[str, Any] = {
        "test": f"Kolmogorov-Smirnov of {what} durations against truncated {model}",
        "statistical": True,
        "count": len(durations),
        "truncated_mean": round(float(distribution.mean()), 3),
        "configured_mean": mean,
    }
    if not durations:
        return {**base, "ok": None, "status": "insufficient data", "p_value": None}
    statistic, p_value = stats.kstest(np.asarray(durations, dtype=float), distribution.cdf)
    return {
        **base,
        "ok": True,
        "status": "pass",
        "statistic": round(float(statistic), 5),
        "p_value": round(float(p_value), 6),
        "sample_mean": round(float(np.mean(durations)), 3),
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
    means = _batch_means(array, batches)
    centre = float(means.mean())
    half = float(stats.t.ppf(1 - ALPHA / 2, batches - 1)) * float(means.std(ddof=1)) / math.sqrt(batches)
    return centre, centre - half, centre + half


def _batch_means(array: np.ndarray, batches: int) -> np.ndarray:
    size = len(array) // batches
    return np.asarray(array[: size * batches].reshape(batches, size).mean(axis=1))


MIN_CYCLES = 200


def regeneration_cycles(arrival_times: np.ndarray, end_times: np.ndarray, agents: int) -> np.ndarray:
    """Where the queue starts afresh. An M/M/c queue is a Markov chain in the number of callers in
    the system: each time an arrival finds the same number, what follows is independent of what came
    before. The number chosen is the most frequent one below ``agents``: nobody waits then, so every
    earlier caller's wait is already settled within its own cycle. Returns the indices of those
    arrivals (cycle starts)."""
    ends = np.sort(end_times)
    index = np.arange(len(arrival_times))
    in_system = index - np.searchsorted(ends, arrival_times, side="right")
    counts = np.bincount(in_system, minlength=agents)[:agents]
    return np.flatnonzero(in_system == int(counts.argmax()))


def _ratio(values: np.ndarray, weights: np.ndarray, starts: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Regenerative ratio estimator sum(values) / sum(weights) over whole cycles: the estimate, its
    standard error (delta method over the i.i.d. cycles), and the per-cycle sums."""
    value_sums = np.add.reduceat(values[starts[0] : starts[-1]], starts[:-1] - starts[0])
    weight_sums = np.add.reduceat(weights[starts[0] : starts[-1]], starts[:-1] - starts[0])
    estimate = float(value_sums.sum() / weight_sums.sum())
    residual = value_sums - estimate * weight_sums
    error = float(residual.std(ddof=1) / (weight_sums.mean() * math.sqrt(len(value_sums))))
    return estimate, error, value_sums, weight_sums


def _z_test(estimate: float, error: float, expected: float) -> tuple[float, float, float]:
    """95 % interval and two-sided p-value of a regenerative estimate against ``expected``."""
    half = float(stats.norm.ppf(1 - ALPHA / 2)) * error
    if error == 0:
        return estimate - half, estimate + half, 1.0 if estimate == expected else 0.0
    return estimate - half, estimate + half, float(2 * stats.norm.sf(abs(estimate - expected) / error))


def erlang_check(
    *,
    arrival_times: Sequence[float],
    waits: Sequence[float],
    queued: Sequence[bool],
    handle_times: Sequence[float],
    arrival_rate: float,
    handle_time: float,
    agents: int,
    sl_seconds: float,
) -> dict[str, Any]:
    """Measured P(wait), average speed of answer, service level and occupancy against Erlang C for
    the configured arrival rate and mean handle time. Every call must be answered (no wait limit);
    values in arrival order, simulated seconds.

    Intervals by the regenerative method: the run is cut where the queue starts afresh (an arrival
    finds the system in its most frequent state), the cycles are independent, and each figure is a
    ratio of cycle sums with a delta-method standard error. No warm-up to guess, no batch size to
    tune, no tolerance added. The check's p-value is Bonferroni's over P(wait), service level and
    occupancy; the average speed of answer is reported with its interval but not tested (see below)."""
    predicted = erlang_c(arrival_rate, handle_time, agents)
    predicted_sl = erlang_service_level(arrival_rate, handle_time, agents, sl_seconds)
    base: dict[str, Any] = {
        "test": "Erlang C (M/M/c) vs measured, regenerative 95 % intervals, Bonferroni over 3 tested figures",
        "statistical": True,
        "arrival_rate_per_second": round(arrival_rate, 6),
        "handle_time_seconds": round(handle_time, 3),
        "agents": agents,
        "offered_erlangs": round(predicted["offered_erlangs"], 3),
    }
    if predicted["offered_erlangs"] >= agents:
        return {**base, "ok": None, "status": "not applicable", "p_value": None, "note": "offered load >= agents"}
    times = np.asarray(arrival_times, dtype=float)
    wait = np.asarray(waits, dtype=float)
    handle = np.asarray(handle_times, dtype=float)
    starts = regeneration_cycles(times, times + wait + handle, agents) if len(times) else np.array([], dtype=int)
    base["cycles"] = max(0, len(starts) - 1)
    if len(starts) - 1 < MIN_CYCLES:
        return {**base, "ok": None, "status": "insufficient data", "p_value": None, "cycles_needed": MIN_CYCLES}
    ones = np.ones(len(times))
    # Each arrival's share of time: the gap to the next arrival (the last one has none).
    gaps = np.append(np.diff(times), 0.0)
    figures: dict[str, Any] = {}
    p_values = []
    for name, values, weights, expected in (
        ("p_wait", np.asarray(queued, dtype=float), ones, predicted["p_wait"]),
        ("asa_seconds", wait, ones, predicted["asa"]),
        (f"service_level_{sl_seconds:g}s", (wait <= sl_seconds).astype(float), ones, predicted_sl),
        ("occupancy", handle / agents, gaps, predicted["occupancy"]),
    ):
        estimate, error, _, _ = _ratio(values, weights, starts)
        low, high, p_value = _z_test(estimate, error, float(expected))
        figures[name] = {
            "measured": round(estimate, 4),
            "interval": [round(low, 4), round(high, 4)],
            "erlang_c": round(float(expected), 4),
            "inside": bool(low <= expected <= high),
            "p_value": round(p_value, 6),
        }
        if name == "asa_seconds":
            # Reported, not tested: the mean wait's sampling distribution is so skewed at these sizes
            # that a normal-theory interval misses 12-16 % of the time at a nominal 5 % (measured,
            # docs/simulation.md). P(wait) and the service level carry the same information.
            figures[name]["tested"] = False
            continue
        p_values.append(p_value)
    p_value = min(1.0, len(p_values) * min(p_values))
    return {**base, "ok": True, "status": "pass", "figures": figures, "p_value": round(p_value, 6)}


def stationarity_check(
    *, arrival_times: Sequence[float], waits: Sequence[float], handle_times: Sequence[float], agents: int
) -> dict[str, Any]:
    """Was the queue stationary? The share of callers who waited (P(wait)) over the first half of
    the regeneration cycles against the second half (five sections of whole cycles each, Welch's
    t-test). Arrivals that fell
    behind and caught up, or a queue drifting away, fail it; Erlang C describes a stationary queue
    only. (P(wait) rather than the mean wait: the mean wait is too skewed for a z-test, see
    ``erlang_check``.)"""
    base: dict[str, Any] = {
        "test": "P(wait), first half vs second half of the regeneration cycles, Welch t-test on 5 + 5 sections",
        "statistical": True,
    }
    times = np.asarray(arrival_times, dtype=float)
    wait = np.asarray(waits, dtype=float)
    ends = times + wait + np.asarray(handle_times, dtype=float)
    starts = regeneration_cycles(times, ends, agents) if len(times) else np.array([], dtype=int)
    if len(starts) - 1 < MIN_CYCLES:
        return {**base, "ok": None, "status": "insufficient data", "p_value": None}
    # Ten sections of whole cycles; P(wait) in each; the first five against the last five (Welch).
    waited = (wait > 0).astype(float)
    _, _, value_sums, count_sums = _ratio(waited, np.ones(len(times)), starts)
    sections = [
        value_sums[part].sum() / count_sums[part].sum() for part in np.array_split(np.arange(len(value_sums)), 10)
    ]
    first, second = np.asarray(sections[:5]), np.asarray(sections[5:])
    if first.std(ddof=1) == 0 and second.std(ddof=1) == 0:
        p_value = 1.0 if first.mean() == second.mean() else 0.0
    else:
        p_value = float(stats.ttest_ind(first, second, equal_var=False).pvalue)
    first_share, second_share = float(first.mean()), float(second.mean())
    return {
        **base,
        "ok": True,
        "status": "pass",
        "first_half_p_wait": round(first_share, 4),
        "second_half_p_wait": round(second_share, 4),
        "p_value": round(p_value, 6),
    }


def verdict(checks: dict[str, dict[str, Any]], alpha: float = ALPHA) -> bool:
    """Decide every statistical check together with Holm's procedure over their p-values, so the
    report's family-wise false-alarm rate is at most ``alpha`` however many checks it holds. Updates
    each check's ``ok``/``status``; "insufficient data" is neither a pass nor a fail. Returns the
    overall verdict (the non-statistical checks must pass too)."""
    tested = [name for name, check in checks.items() if check.get("statistical") and check.get("p_value") is not None]
    p_values = [float(checks[name]["p_value"]) for name in tested]
    rejected = holm(p_values, alpha)
    order = sorted(range(len(tested)), key=lambda i: p_values[i])
    for rank, index in enumerate(order):
        check = checks[tested[index]]
        check["ok"] = not rejected[index]
        check["status"] = "fail" if rejected[index] else "pass"
        check["holm_threshold"] = round(alpha / (len(tested) - rank), 6)
    return all(check.get("ok") is not False for check in checks.values())


def erlang_a(
    arrival_rate: float, handle_time: float, agents: int, patience: float, sl_seconds: float
) -> dict[str, float]:
    """Erlang A (M/M/c+M, Palm): callers hang up after an exponential patience of mean ``patience``.
    Our callers hang up after exactly ``max_wait_seconds``, so this is the textbook approximation,
    not an exact model. Returns P(wait), abandonment share, and service level (answered within
    ``sl_seconds``, over all arrivals)."""
    from scipy.linalg import expm

    mu, theta = 1.0 / handle_time, 1.0 / patience
    offered = arrival_rate * handle_time
    # Stationary distribution, in logs, truncated where the tail no longer matters.
    log_pi = [0.0]
    for n in range(1, agents + 1):
        log_pi.append(log_pi[-1] + math.log(offered) - math.log(n))
    n = agents
    while True:
        n += 1
        log_pi.append(log_pi[-1] + math.log(arrival_rate) - math.log(agents * mu + (n - agents) * theta))
        if n - agents > 50 and log_pi[-1] < max(log_pi) - 40:
            break
    weights = np.exp(np.asarray(log_pi) - max(log_pi))
    pi = weights / weights.sum()
    queue_pi = pi[agents:]
    positions = np.arange(len(queue_pi))
    p_wait = float(queue_pi.sum())
    abandonment = float(theta * (positions * queue_pi).sum() / arrival_rate)
    # A caller arriving with j callers ahead moves up at rate c mu + j theta (service or one of
    # them hanging up) and hangs up itself at rate theta: its chance to be answered within t.
    size = len(queue_pi)
    generator = np.zeros((size + 1, size + 1))
    for j in range(size):
        move = agents * mu + j * theta
        generator[j, j] = -(move + theta)
        generator[j, j - 1 if j > 0 else size] = move
    answered = expm(generator * sl_seconds)[:size, size]
    service_level = float(pi[:agents].sum() + (queue_pi * answered).sum())
    return {"p_wait": p_wait, "abandonment": abandonment, "service_level": service_level}
