"""Staffing: the virtual simulator per agent count beside Erlang C and A, the smallest staff that
meets the target, the stored curve for the dashboard, and the chart."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from assignment.models import RoutingSettings
from routing.services import routing_config_forget
from simulation import stats
from simulation.management.commands.simulate import Command
from simulation.models import SimulationRun
from simulation.selectors import simulation_run_latest


class ErlangATests:
    def test_it_becomes_erlang_c_when_nobody_hangs_up(self) -> None:
        patient = stats.erlang_a(0.08, 200.0, 20, patience=1e9, sl_seconds=20)
        assert patient["p_wait"] == pytest.approx(stats.erlang_c(0.08, 200.0, 20)["p_wait"], rel=1e-4)
        assert patient["service_level"] == pytest.approx(stats.erlang_service_level(0.08, 200.0, 20, 20), rel=1e-4)
        assert patient["abandonment"] == pytest.approx(0.0, abs=1e-4)

    def test_impatience_raises_abandonment_and_lowers_waiting(self) -> None:
        patient = stats.erlang_a(0.1, 200.0, 20, patience=600, sl_seconds=20)
        impatient = stats.erlang_a(0.1, 200.0, 20, patience=60, sl_seconds=20)
        assert impatient["abandonment"] > patient["abandonment"] > 0
        assert impatient["p_wait"] < patient["p_wait"]
        # Over capacity (20 Erlangs on 20 agents) Erlang C has no steady state; Erlang A does.
        assert 0 < impatient["service_level"] < 1


class StaffingCommandTests:
    def test_it_sweeps_agent_counts_and_finds_the_smallest_staff(self, alpha, tmp_path) -> None:
        chart, report = tmp_path / "staffing.png", tmp_path / "staffing.json"
        out = StringIO()
        call_command("simulate", "--staffing", "1:3", "--calls", "40", "--rate", "0.008", "--tenant", "alpha",
                     "--plot", str(chart), "--json", str(report), stdout=out)  # fmt: skip
        result = json.loads(report.read_text())
        assert [row["agents"] for row in result["rows"]] == [1, 2, 3]
        levels = [row["simulated"]["service_level"] for row in result["rows"]]
        assert levels[0] < levels[2]  # more agents, more calls answered in time
        assert all("erlang_a" in row for row in result["rows"])  # the tenant's wait limit is on
        meeting = [row["agents"] for row in result["rows"] if row["simulated"]["service_level"] >= 0.8]
        assert result["smallest_staff_meeting_target"] == (min(meeting) if meeting else None)
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
        assert "Smallest staff meeting the target" in out.getvalue()
        with schema_context(alpha.schema_name):
            latest = simulation_run_latest(kind=SimulationRun.Kind.STAFFING)
            assert latest is not None and latest.report is not None
            assert latest.report["staffing"]["rows"] == result["rows"]

    def test_the_target_defaults_to_the_tenants_service_level_target(self, alpha, tmp_path) -> None:
        with schema_context(alpha.schema_name):
            RoutingSettings.objects.update(service_level_target=0.35)
            routing_config_forget()
        report = tmp_path / "staffing.json"
        call_command("simulate", "--staffing", "1:2", "--calls", "30", "--rate", "0.008", "--tenant", "alpha",
                     "--json", str(report), stdout=StringIO())  # fmt: skip
        result = json.loads(report.read_text())
        assert result["service_level_target"] == 0.35
        meeting = [row["agents"] for row in result["rows"] if row["simulated"]["service_level"] >= 0.35]
        assert result["smallest_staff_meeting_target"] == (min(meeting) if meeting else None)
        # --target still overrides it.
        call_command("simulate", "--staffing", "1:1", "--calls", "5", "--rate", "0.008", "--tenant", "alpha",
                     "--target", "0.9", "--json", str(report), stdout=StringIO())  # fmt: skip
        assert json.loads(report.read_text())["service_level_target"] == 0.9

    def test_the_help_gives_the_targets_default(self) -> None:
        out = StringIO()
        parser = Command().create_parser("manage.py", "simulate")
        parser.print_help(out)
        assert "default: the tenant's service_level_target" in " ".join(out.getvalue().split())

    def test_it_refuses_a_bad_range(self, alpha) -> None:
        for bad in ("3:1", "x", "0:4"):
            with pytest.raises(CommandError):
                call_command("simulate", "--staffing", bad, "--tenant", "alpha", stdout=StringIO())
        with schema_context(alpha.schema_name):
            assert not SimulationRun.objects.exists()
