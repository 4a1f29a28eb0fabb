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
        return {
            "ok": None,
            "status": "insufficient data",
            "statistical": False,
            "count": 0,
            "threshold_ms": threshold_ms,
        }
    array = np.asarray(values_ms, dtype=float)
    p50, p95, p99 = (float(x) for x in np.percentile(array, [50, 95, 99]))
    return {
        "ok": p99 <= threshold_ms,
        "status": "pass" if p99 <= threshold_ms else "fail",
        "statistical": False,
        "count": len(values_ms),
        "p50": round(p50, 3),
        "p95": round(p95, 3),
        "p99": round(p99, 3),
        "max": round(float(array.max()), 3),
        "threshold_ms": threshold_ms,
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


ERLANG_BATCHES = 10
# Each batch must span this many relaxation times of the queue, so that batch means are nearly
# independent (else the batch-means interval is too narrow and the check raises false alarms).
RELAXATIONS_PER_BATCH = 5


def relaxation_arrivals(arrival_rate: float, handle_time: float, agents: int) -> float:
    """The M/M/c queue's relaxation time, counted in arrivals: lambda / (c mu (1 - sqrt(rho))^2)."""
    rho = arrival_rate * handle_time / agents
    if rho >= 1:
        return math.inf
    return arrival_rate / (agents / handle_time * (1 - math.sqrt(rho)) ** 2)


def erlang_calls_needed(arrival_rate: float, handle_time: float, agents: int) -> float:
    """Steady-state calls an Erlang comparison needs (ERLANG_BATCHES batches of
    RELAXATIONS_PER_BATCH relaxation times); infinite when the queue is not stable."""
    return (
        math.ceil(ERLANG_BATCHES * RELAXATIONS_PER_BATCH * relaxation_arrivals(arrival_rate, handle_time, agents))
        if relaxation_arrivals(arrival_rate, handle_time, agents) < math.inf
        else math.inf
    )


def _t_test(batch_means: np.ndarray, expected: float) -> tuple[float, float, float, float]:
    """Mean, 95 % interval and two-sided p-value of the batch means against ``expected``."""
    count = len(batch_means)
    centre = float(batch_means.mean())
    error = float(batch_means.std(ddof=1)) / math.sqrt(count)
    half = float(stats.t.ppf(1 - ALPHA / 2, count - 1)) * error
    if error == 0:
        p_value = 1.0 if centre == expected else 0.0
    else:
        p_value = float(2 * stats.t.sf(abs(centre - expected) / error, count - 1))
    return centre, centre - half, centre + half, p_value


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
    warm_up_share: float = 0.1,
) -> dict[str, Any]:
    """Measured P(wait), average speed of answer, service level and occupancy against Erlang C for
    the configured arrival rate and mean handle time. Every call must be answered (no wait limit);
    values in arrival order, simulated seconds. The first ``warm_up_share`` of calls (the empty
    system's warm-up) is left out; each figure gets a batch-means t-test (10 batches, no added
    tolerance); the check's p-value is Bonferroni's over the four figures."""
    predicted = erlang_c(arrival_rate, handle_time, agents)
    predicted_sl = erlang_service_level(arrival_rate, handle_time, agents, sl_seconds)
    base: dict[str, Any] = {
        "test": "Erlang C (M/M/c) vs measured, batch-means t-tests (10 batches), Bonferroni over 4 figures",
        "statistical": True,
        "arrival_rate_per_second": round(arrival_rate, 6),
        "handle_time_seconds": round(handle_time, 3),
        "agents": agents,
        "offered_erlangs": round(predicted["offered_erlangs"], 3),
    }
    if predicted["offered_erlangs"] >= agents:
        return {**base, "ok": None, "status": "not applicable", "p_value": None, "note": "offered load >= agents"}
    skip = int(len(waits) * warm_up_share)
    steady = len(waits) - skip
    needed = erlang_calls_needed(arrival_rate, handle_time, agents)
    base.update(warm_up_calls_left_out=skip, steady_calls=steady, steady_calls_needed=needed)
    if steady < needed:
        return {**base, "ok": None, "status": "insufficient data", "p_value": None}
    times = np.asarray(arrival_times[skip:], dtype=float)
    wait = np.asarray(waits[skip:], dtype=float)
    handle = np.asarray(handle_times[skip:], dtype=float)
    size = steady // ERLANG_BATCHES
    spans = np.array(
        [times[min((b + 1) * size, steady - 1)] - times[b * size] for b in range(ERLANG_BATCHES)], dtype=float
    )
    occupancy = _batch_means(handle, ERLANG_BATCHES) * size / (agents * spans)
    figures: dict[str, Any] = {}
    p_values = []
    for name, batch_means, expected in (
        ("p_wait", _batch_means(np.asarray(queued[skip:], dtype=float), ERLANG_BATCHES), predicted["p_wait"]),
        ("asa_seconds", _batch_means(wait, ERLANG_BATCHES), predicted["asa"]),
        (
            f"service_level_{int(sl_seconds)}s",
            _batch_means((wait <= sl_seconds).astype(float), ERLANG_BATCHES),
            predicted_sl,
        ),
        ("occupancy", occupancy, predicted["occupancy"]),
    ):
        mean, low, high, p_value = _t_test(batch_means, float(expected))
        p_values.append(p_value)
        figures[name] = {
            "measured": round(mean, 4),
            "interval": [round(low, 4), round(high, 4)],
            "erlang_c": round(float(expected), 4),
            "inside": bool(low <= expected <= high),
            "p_value": round(p_value, 6),
        }
    p_value = min(1.0, len(p_values) * min(p_values))
    return {**base, "ok": True, "status": "pass", "figures": figures, "p_value": round(p_value, 6)}


def stationarity_check(waits: Sequence[float], *, needed: int, warm_up_share: float = 0.1) -> dict[str, Any]:
    """Were the waits stationary? The first half of the steady-state run against the second: Welch's
    t-test on the batch means (5 batches a half). A queue at the edge of stability, or arrivals that
    fell behind and caught up, fail it; Erlang C describes a stationary queue only."""
    base: dict[str, Any] = {
        "test": "first half vs second half of the waits, Welch t-test on batch means",
        "statistical": True,
    }
    wait = np.asarray(waits[int(len(waits) * warm_up_share) :], dtype=float)
    if len(wait) < needed:
        return {**base, "ok": None, "status": "insufficient data", "p_value": None}
    means = _batch_means(wait, ERLANG_BATCHES)
    first, second = means[: ERLANG_BATCHES // 2], means[ERLANG_BATCHES // 2 :]
    if first.std(ddof=1) == 0 and second.std(ddof=1) == 0:
        p_value = 1.0 if first.mean() == second.mean() else 0.0
    else:
        p_value = float(stats.ttest_ind(first, second, equal_var=False).pvalue)
    return {
        **base,
        "ok": True,
        "status": "pass",
        "first_half_asa": round(float(first.mean()), 3),
        "second_half_asa": round(float(second.mean()), 3),
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
