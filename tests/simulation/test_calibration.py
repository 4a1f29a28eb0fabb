"""The report's checks are calibrated: measured, not assumed.

Each check and the overall verdict are run on 200 seeded synthetic draws from a correct system (the
counts, outcomes, durations and M/M/c waits a run produces), and must raise a false alarm in at most
7 % of them (5 % nominal, plus what 200 draws can wobble). Their power is measured against the
faults it must catch: a transposed conversion matrix and a wrong duration std. Draws, not full
runs: the checks see exactly what a run hands them, and 200 runs through Postgres would take an hour.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
import pytest

from routing.services import DEFAULT_MATRIX
from simulation import stats

SEEDS = range(200)
MAX_FALSE_ALARMS = 0.07
MIX = {"llamada_tipo_1": 0.25, "llamada_tipo_2": 0.25, "llamada_tipo_3": 0.25, "llamada_tipo_4": 0.25}
MATRIX = {(a, c): p for a, row in DEFAULT_MATRIX.items() for c, p in row.items()}
NORMAL = ("normal", 180.0, 180.0, 1.0, 3600.0)
# A small M/M/c (5 agents, 70 % busy) keeps 200 queue draws fast; the check is the same at any size.
AGENTS, RATE, HANDLE = 5, 3.5, 1.0


def _mix_counts(rng: np.random.Generator, calls: int) -> dict[str, int]:
    return dict(zip(sorted(MIX), (int(x) for x in rng.multinomial(calls, [0.25] * 4)), strict=True))


def _cells(rng: np.random.Generator, calls: int, truth: dict[tuple[str, str], float]) -> dict[Any, tuple[int, int]]:
    """Outcomes of ``calls`` completed calls spread over the cells as a run spreads them."""
    per_cell = rng.multinomial(calls, [1 / len(MATRIX)] * len(MATRIX))
    return {cell: (int(rng.binomial(n, truth[cell])), int(n)) for cell, n in zip(sorted(MATRIX), per_cell, strict=True)}


def _durations(rng: np.random.Generator, calls: int, std: float = 180.0) -> list[float]:
    distribution = stats.truncated_distribution("normal", 180.0, std, 1.0, 3600.0)
    return list(distribution.rvs(size=calls, random_state=rng))


def _queue(rng: np.random.Generator, calls: int, rate: float = RATE) -> dict[str, Any]:
    """An M/M/c FCFS queue started empty, as the simulator plays it: arrival times, waits, whether
    each call queued, handle times (in arrival order)."""
    arrivals = np.cumsum(rng.exponential(1 / rate, calls))
    services = rng.exponential(HANDLE, calls)
    free = [0.0] * AGENTS
    waits = np.empty(calls)
    for index in range(calls):
        earliest = heapq.heappop(free)
        start = max(arrivals[index], earliest)
        waits[index] = start - arrivals[index]
        heapq.heappush(free, start + services[index])
    return {"arrival_times": arrivals, "waits": waits, "queued": waits > 0, "handle_times": services}


def _erlang(draw: dict[str, Any], rate: float = RATE) -> dict[str, Any]:
    return stats.erlang_check(**draw, arrival_rate=rate, handle_time=HANDLE, agents=AGENTS, sl_seconds=0.2)


ERLANG_CALLS = 3000  # about 550 regeneration cycles of this queue


def _report_checks(seed: int, truth: dict[tuple[str, str], float] = MATRIX, std: float = 180.0) -> dict[str, Any]:
    """Every statistical check of one synthetic run with exponential durations (so Erlang applies)."""
    rng = np.random.default_rng([seed, 4242])
    queue = _queue(rng, ERLANG_CALLS)
    return {
        "call_type_mix": stats.mix_check(_mix_counts(rng, 1000), MIX, seed=seed),
        "conversion": stats.conversion_check(_cells(rng, 1000, truth), MATRIX, seed=seed),
        "durations": stats.duration_check(_durations(rng, 1000, std), *NORMAL),
        "erlang_c": _erlang(queue),
        "stationarity": stats.stationarity_check(
            arrival_times=queue["arrival_times"],
            waits=queue["waits"],
            handle_times=queue["handle_times"],
            agents=AGENTS,
        ),
    }


@pytest.fixture(scope="module")
def correct_reports() -> list[dict[str, Any]]:
    reports = []
    for seed in SEEDS:
        checks = _report_checks(seed)
        checks["verdict"] = {"ok": stats.verdict(checks)}
        reports.append(checks)
    return reports


def _alarm_rate(reports: list[dict[str, Any]], name: str, raw: bool = True) -> float:
    """Share of draws where a check objects: on its own at 5 % (``raw``), or in the verdict."""
    if raw:
        return float(np.mean([r[name]["p_value"] < stats.ALPHA for r in reports]))
    return float(np.mean([r[name]["ok"] is False for r in reports]))


class FalseAlarmTests:
    @pytest.mark.parametrize("check", ["erlang_c", "stationarity"])
    def test_each_queue_check_alone_raises_at_most_7_percent_false_alarms(self, correct_reports, check) -> None:
        assert all(r[check]["p_value"] is not None for r in correct_reports), "the draws must be big enough"
        assert _alarm_rate(correct_reports, check) <= MAX_FALSE_ALARMS

    def test_each_count_check_alone_raises_at_most_7_percent_false_alarms(self) -> None:
        # Cheap checks: 1,000 draws each, so that the measured rate is within a point of the truth.
        alarms: dict[str, list[bool]] = {"call_type_mix": [], "conversion": [], "durations": []}
        for seed in range(1000):
            rng = np.random.default_rng([seed, 5151])
            alarms["call_type_mix"].append(stats.mix_check(_mix_counts(rng, 1000), MIX, seed=seed)["p_value"] < 0.05)
            conversion = stats.conversion_check(_cells(rng, 1000, MATRIX), MATRIX, seed=seed)
            alarms["conversion"].append(conversion["p_value"] < 0.05)
            alarms["durations"].append(stats.duration_check(_durations(rng, 300), *NORMAL)["p_value"] < 0.05)
        rates = {name: float(np.mean(values)) for name, values in alarms.items()}
        assert all(rate <= MAX_FALSE_ALARMS for rate in rates.values()), rates

    def test_the_verdict_raises_at_most_7_percent_false_alarms_over_all_its_checks(self, correct_reports) -> None:
        failed = np.mean([not r["verdict"]["ok"] for r in correct_reports])
        assert failed <= MAX_FALSE_ALARMS
        # Without Holm the same checks, each at 5 %, would fail far more often: the family matters.
        naive = np.mean([any(r[c]["p_value"] < 0.05 for c in r if c != "verdict") for r in correct_reports])
        assert naive > failed

    def test_the_quick_runs_conversion_check_is_calibrated_at_a_few_calls_per_cell(self) -> None:
        # 60 calls over 16 cells (one to six calls a cell): where Wilson intervals failed one run in five.
        rng = np.random.default_rng(99)
        alarms = [
            stats.conversion_check(_cells(rng, 60, MATRIX), MATRIX, seed=seed)["p_value"] < stats.ALPHA
            for seed in SEEDS
        ]
        assert np.mean(alarms) <= MAX_FALSE_ALARMS


def _transposed() -> dict[tuple[str, str], float]:
    """P(OK) of agent type i on call type j taken from agent type j on call type i."""
    return {(a, c): MATRIX[(c.replace("llamada", "agente"), a.replace("agente", "llamada"))] for a, c in MATRIX}


class PowerTests:
    def test_the_conversion_check_sees_a_transposed_matrix(self) -> None:
        transposed = _transposed()
        assert transposed != MATRIX
        # The default matrix is nearly symmetric (rows 1-2 match their columns), so it takes a
        # long run's outcomes (20,000 calls) to tell its transpose apart.
        detected = [
            stats.conversion_check(_cells(np.random.default_rng([seed, 7]), 20_000, transposed), MATRIX, seed=seed)[
                "p_value"
            ]
            < stats.ALPHA / 5  # as one of five checks in the verdict (Holm's strictest step)
            for seed in range(100)
        ]
        assert np.mean(detected) >= 0.9

    def test_the_duration_check_sees_a_wrong_std(self) -> None:
        detected = [
            stats.duration_check(_durations(np.random.default_rng([seed, 8]), 1000, std=140.0), *NORMAL)["p_value"]
            < stats.ALPHA / 5
            for seed in range(100)
        ]
        assert np.mean(detected) >= 0.9

    def test_the_verdict_fails_a_run_drawn_from_a_transposed_matrix_and_a_wrong_std(self) -> None:
        transposed = _transposed()
        failed = [not stats.verdict(_report_checks(seed, truth=transposed, std=140.0)) for seed in range(50)]
        assert np.mean(failed) >= 0.9

    def test_the_erlang_check_sees_a_busier_queue_than_predicted(self) -> None:
        # Arrivals 10 % faster than the rate the prediction is made for.
        detected = [
            _erlang(_queue(np.random.default_rng([seed, 9]), ERLANG_CALLS, rate=RATE * 1.1))["p_value"] < stats.ALPHA
            for seed in range(50)
        ]
        assert np.mean(detected) >= 0.8


class InsufficientDataTests:
    def test_too_few_outcomes_are_insufficient_data_never_a_pass_or_a_fail(self) -> None:
        cells = {cell: (0, 0) for cell in MATRIX}
        cells[("agente_tipo_1", "llamada_tipo_1")] = (1, 2)
        result = stats.conversion_check(cells, MATRIX)
        assert result["status"] == "insufficient data" and result["ok"] is None and result["p_value"] is None
        checks = {"conversion": result}
        assert stats.verdict(checks) is True and checks["conversion"]["status"] == "insufficient data"

    def test_a_short_queue_run_is_insufficient_for_erlang_c(self) -> None:
        result = _erlang(_queue(np.random.default_rng(1), 200))
        assert result["status"] == "insufficient data" and result["p_value"] is None

    def test_a_cell_that_cannot_be_judged_says_so(self) -> None:
        cells = {cell: (0, 40) for cell in MATRIX}
        cells[("agente_tipo_2", "llamada_tipo_4")] = (0, 1)  # P(OK) 0.04: one KO call says nothing
        result = stats.conversion_check(cells, MATRIX)
        assert result["cells"]["agente_tipo_2/llamada_tipo_4"]["status"] == "insufficient data"
        assert result["status"] == "pass" and result["p_value"] < 0.05  # 0 OK of 40 everywhere is off
