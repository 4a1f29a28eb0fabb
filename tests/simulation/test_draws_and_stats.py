"""The draws and the statistical checks on their own, with fixed seeds and known answers. Each
check is also shown to fail on data that breaks it, so a pass means something."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from simulation import stats
from simulation.draws import draw_duration, draw_outcome

NORMAL: dict[str, Any] = {"model": "normal", "mean": 180.0, "std": 180.0, "low": 1.0, "high": 3600.0}


def _durations(seed: int, n: int, **model: Any) -> list[float]:
    return [draw_duration(seed=seed, sequence=i, **model) for i in range(n)]


class DrawTests:
    def test_it_reproduces_the_same_draws_for_the_same_seed(self) -> None:
        assert _durations(1, 50, **NORMAL) == _durations(1, 50, **NORMAL)
        assert _durations(1, 50, **NORMAL) != _durations(2, 50, **NORMAL)
        assert [draw_outcome(seed=5, sequence=i, p_ok=0.3) for i in range(40)] == [
            draw_outcome(seed=5, sequence=i, p_ok=0.3) for i in range(40)
        ]

    def test_it_keeps_every_duration_within_the_bounds(self) -> None:
        values = _durations(3, 2000, **NORMAL)
        assert min(values) >= 1.0 and max(values) <= 3600.0

    def test_the_effective_mean_is_the_truncated_one_not_180(self) -> None:
        values = np.array(_durations(4, 4000, **NORMAL))
        truncated = stats.truncated_distribution("normal", 180, 180, 1, 3600)
        assert truncated.mean() == pytest.approx(232, abs=1)
        half = 3 * values.std(ddof=1) / math.sqrt(len(values))
        assert abs(values.mean() - truncated.mean()) < half
        assert abs(values.mean() - 180) > half

    def test_outcomes_follow_the_rate(self) -> None:
        ok = sum(draw_outcome(seed=9, sequence=i, p_ok=0.2) == "OK" for i in range(5000))
        low, high = stats.proportion_interval(ok, 5000)
        assert low <= 0.2 <= high


class CheckTests:
    def test_wilson_interval_matches_a_known_value(self) -> None:
        low, high = stats.wilson_interval(8, 10, 1.959964)
        assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)

    def test_the_mix_check_passes_a_fair_mix_and_fails_a_skewed_one(self) -> None:
        weights = {"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}
        assert stats.mix_check({"a": 251, "b": 249, "c": 240, "d": 260}, weights)["p_value"] > 0.5
        assert stats.mix_check({"a": 400, "b": 200, "c": 200, "d": 200}, weights)["p_value"] < 0.001

    def test_the_conversion_check_detects_a_wrong_matrix(self) -> None:
        configured = {("t1", "c1"): 0.3, ("t1", "c2"): 0.05}
        rng = np.random.default_rng(0)
        right = {cell: (int((rng.random(800) < p).sum()), 800) for cell, p in configured.items()}
        assert stats.conversion_check(right, configured)["p_value"] > 0.05
        swapped = {("t1", "c1"): right[("t1", "c2")], ("t1", "c2"): right[("t1", "c1")]}
        result = stats.conversion_check(swapped, configured)
        assert result["p_value"] < 0.001 and result["cells"]["t1/c1"]["status"] == "off"
        checks = {"conversion": result}
        assert stats.verdict(checks) is False and checks["conversion"]["status"] == "fail"

    def test_the_duration_check_detects_a_wrong_model(self) -> None:
        normal = _durations(11, 1500, **NORMAL)
        assert stats.duration_check(normal, "normal", 180, 180, 1, 3600)["p_value"] > 0.05
        assert stats.duration_check(normal, "exponential", 180, 180, 1, 3600)["p_value"] < 0.001
        # Comparing against the untruncated 180 s mean would be wrong too: the bounds matter.
        assert stats.duration_check(normal, "normal", 180, 180, -10_000, 10_000)["p_value"] < 0.001

    def test_erlang_c_matches_the_textbook(self) -> None:
        # 2 Erlangs offered to 3 agents: P(wait) = 4/9; ASA = P(wait) * AHT / (c - A).
        result = stats.erlang_c(arrival_rate=2.0, handle_time=1.0, agents=3)
        assert result["p_wait"] == pytest.approx(4 / 9)
        assert result["asa"] == pytest.approx(4 / 9)
        assert stats.erlang_service_level(2.0, 1.0, 3, 0.0) == pytest.approx(1 - 4 / 9)
        assert stats.erlang_c(arrival_rate=3.0, handle_time=1.0, agents=3)["p_wait"] == 1.0

    def test_latency_check_compares_p99_with_the_threshold(self) -> None:
        assert stats.latency_check([1.0] * 99 + [50.0], 100)["ok"]
        assert not stats.latency_check([1.0] * 90 + [150.0] * 10, 100)["ok"]

    def test_latency_as_information_is_neither_a_pass_nor_a_fail(self) -> None:
        slow = stats.latency_check([1.0] * 90 + [150.0] * 10, 100, decides=False)
        assert slow["status"] == "info" and slow["ok"] is None and slow["exceeds_threshold"] is True
        assert slow["p99"] == pytest.approx(150.0)
        checks = {"latency": slow, "mix": {"statistical": True, "p_value": 0.5}}
        assert stats.verdict(checks)  # a slow machine does not fail the routing's verdict
        assert stats.latency_check([], 100, decides=False)["status"] == "info"

    def test_holm_controls_the_family_and_steps_down(self) -> None:
        assert stats.holm([0.01, 0.04, 0.03], alpha=0.05) == [True, False, False]  # 0.01 < 0.05/3 only
        assert stats.holm([0.01, 0.02, 0.04], alpha=0.05) == [True, True, True]  # 0.01<.0167, 0.02<.025, 0.04<.05
        assert stats.holm_adjusted([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])

    def test_the_verdict_leaves_insufficient_data_out_of_the_family(self) -> None:
        checks: dict[str, dict[str, Any]] = {
            "a": {"statistical": True, "p_value": 0.04},
            "b": {"statistical": True, "p_value": None, "ok": None, "status": "insufficient data"},
            "invariants": {"statistical": False, "ok": True},
        }
        # One check tested: it is judged at 5 % (b does not count, neither as a pass nor a fail).
        assert stats.verdict(checks) is False and checks["a"]["status"] == "fail"
        assert checks["b"]["status"] == "insufficient data" and checks["b"]["ok"] is None
        checks["b"] = {"statistical": True, "p_value": 0.9}
        assert stats.verdict(checks) is True  # two tested: 0.04 >= 0.05 / 2
        checks["invariants"]["ok"] = False
        assert stats.verdict(checks) is False

    def test_batch_means_give_a_wider_interval_for_correlated_data(self) -> None:
        rng = np.random.default_rng(1)
        walk = np.cumsum(rng.normal(size=2000)) * 0.1 + 5
        _, low, high = stats.batch_means_interval(list(walk))
        naive = 1.96 * walk.std(ddof=1) / math.sqrt(len(walk))
        assert (high - low) / 2 > naive
