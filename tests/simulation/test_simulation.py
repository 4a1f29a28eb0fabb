"""Simulated calls with a real Celery worker: completion on time, the sweep after a worker dies,
tasks bound to their tenant's schema, and the simulate command's report (which can fail)."""

from __future__ import annotations

import contextlib
import datetime
import json
import subprocess
import sys
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import schema_context

from agents.models import Agent
from assignment.models import RoutingSettings
from assignment.services.recovery import engine_drift
from assignment.services.sweep import sweep_tenant
from calls.models import Call, CallType
from calls.services import call_create
from routing.services import routing_config_forget
from simulation.models import SimulationRun
from simulation.runner import SimulationOptions, build_report, run_simulation
from simulation.services import SIMULATOR
from simulation.tasks import complete_simulated_call
from tests.conftest import BASE_DIR, service_env
from tests.factories import make_agent


def _simulated_calls(run: SimulationRun, n: int) -> list[Call]:
    call_type = CallType.objects.get(slug="llamada_tipo_1")
    return [
        call_create(
            phone_number=f"+346970000{i:02d}",
            call_type=call_type,
            actor=SIMULATOR,
            simulation_run=run,
            simulation_sequence=i,
        ).call
        for i in range(n)
    ]


def _wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.worker
class WorkerCompletionTests:
    def test_a_worker_completes_simulated_calls_on_time(self, alpha, celery_worker) -> None:
        with schema_context(alpha.schema_name):
            agents = [make_agent(name=f"w{i}", simulated=True) for i in range(3)]
            run = SimulationRun.objects.create(seed=1, strategy="longest_idle", rate_per_second=1, time_scale=1000)
            calls = _simulated_calls(run, 5)  # 3 talk at once, 2 wait (unless a call already ended)
            assert [c.status for c in calls[:3]] == ["ASSIGNED"] * 3
            assert all(c.expected_end_at is not None and c.planned_duration_seconds for c in calls[:3])
            done = _wait_until(lambda: not Call.objects.filter(simulation_run=run, status__in=Call.OPEN).exists(), 30)
            assert done, celery_worker.log()
            finished = list(Call.objects.filter(simulation_run=run))
            assert {c.end_reason for c in finished} == {"completed"}  # by the task, not the sweep
            assert all(c.outcome in ("OK", "KO") for c in finished)
            # Never early; how late depends on the machine's load, so it is not asserted here (the
            # live report measures the completion lag, and the virtual clock has none).
            for call in finished:
                assert (call.ended_at - call.expected_end_at).total_seconds() >= -0.05, celery_worker.log()
            assert {c.agent_id for c in finished} <= {a.id for a in agents} and len(finished) == 5
            assert all(a.status == Agent.Status.AVAILABLE for a in Agent.objects.filter(id__in=[a.id for a in agents]))
            assert not engine_drift()

    def test_the_sweep_completes_calls_after_the_worker_dies(self, alpha, celery_worker) -> None:
        with schema_context(alpha.schema_name):
            make_agent(name="stranded?", simulated=True)
            celery_worker.kill()
            run = SimulationRun.objects.create(seed=2, strategy="longest_idle", rate_per_second=1, time_scale=10_000)
            (call,) = _simulated_calls(run, 1)
            assert call.status == Call.Status.ASSIGNED
            time.sleep(max(0.0, (call.expected_end_at - call.assigned_at).total_seconds()))
            # Nobody runs the task; the sweep (beat) completes the call once it is overdue.
            assert call.expected_end_at is not None
            later: datetime.datetime = call.expected_end_at + datetime.timedelta(seconds=3)
            report = sweep_tenant(now=later)
            assert report.overdue_completed == 1
            call.refresh_from_db()
            assert call.status == Call.Status.COMPLETED and call.end_reason == "completed_by_sweep"
            assert call.agent_id is not None
            assert Agent.objects.get(id=call.agent_id).status == Agent.Status.AVAILABLE


class TaskTenancyTests:
    def test_a_task_never_touches_another_schema(self, alpha, beta) -> None:
        with schema_context(alpha.schema_name):
            make_agent(simulated=True)
            run = SimulationRun.objects.create(seed=3, strategy="longest_idle", rate_per_second=1, time_scale=1)
            (call,) = _simulated_calls(run, 1)
        # The same call id, sent with beta's schema: beta has no such call, alpha's stays untouched.
        assert complete_simulated_call(beta.schema_name, str(call.id)) is False
        with schema_context(alpha.schema_name):
            assert Call.objects.get(id=call.id).status == Call.Status.ASSIGNED
        assert complete_simulated_call(alpha.schema_name, str(call.id)) is True
        assert complete_simulated_call(alpha.schema_name, str(call.id)) is False  # idempotent
        with schema_context(alpha.schema_name):
            assert Call.objects.get(id=call.id).status == Call.Status.COMPLETED
        with schema_context(beta.schema_name):
            assert not Call.objects.exists()


class SimulateCommandTests:
    def test_the_quick_run_passes_and_writes_every_figure(self, alpha, tmp_path) -> None:
        out = StringIO()
        report_file = tmp_path / "report.json"
        arguments = ["--quick", "--tenant", "alpha", "--seed", "5", "--json", str(report_file)]
        try:
            call_command("simulate", *arguments, stdout=out)
        except CommandError:
            pytest.fail("simulate failed:\n" + out.getvalue().replace("\r", "\n")[-3000:])
        report = json.loads(report_file.read_text())
        assert report["ok"] and "all checks passed" in out.getvalue()
        assert report["clock"] == "virtual"
        assert set(report["checks"]) == {"latency", "call_type_mix", "conversion", "durations", "invariants"}
        assert report["calls"] == 60 and report["statuses"] == {"COMPLETED": 60}
        assert report["checks"]["latency"]["p99"] > 0
        # Wall-clock latency measures the machine: on the simulated clock it is information only.
        assert report["checks"]["latency"]["status"] == "info" and report["checks"]["latency"]["ok"] is None
        assert len(report["checks"]["conversion"]["cells"]) == 16
        assert all(report["checks"][name]["p_value"] is not None for name in ("call_type_mix", "durations"))

    def test_the_same_seed_gives_the_same_report(self, alpha, tmp_path) -> None:
        reports = []
        for attempt in range(2):
            path = tmp_path / f"report-{attempt}.json"
            with contextlib.suppress(CommandError):
                call_command("simulate", "--calls", "120", "--agents", "6", "--tenant", "alpha", "--seed", "77",
                             "--json", str(path), stdout=StringIO())  # fmt: skip
            report = json.loads(path.read_text())
            # Only what the wall clock measures may differ: the run's identity and times, and latency.
            report.pop("wall_clock")
            report["checks"].pop("latency")
            reports.append(report)
        assert reports[0] == reports[1]
        assert reports[0]["checks"]["conversion"]["calls"] == 120

    def test_the_report_fails_when_the_matrix_or_the_duration_model_is_wrong(self, alpha) -> None:
        with schema_context(alpha.schema_name):
            RoutingSettings.objects.update(duration_model="exponential", duration_mean_seconds=180)
            routing_config_forget()
            outcome = run_simulation(
                SimulationOptions(calls=400, agents=30, time_scale=20_000, seed=8, inline_completion=True)
            )
            assert outcome.report["checks"]["durations"]["ok"]
            # Judge the same calls against a model they were not drawn from: the KS test must object.
            RoutingSettings.objects.update(duration_model="normal")
            # And against a matrix they were not drawn from (every rate far from the truth).
            from assignment.models import ConversionRate

            ConversionRate.objects.update(p_ok=0.9)
            routing_config_forget()
            report = build_report(run=outcome.run, agents=30, notes=[])
            assert not report["checks"]["durations"]["ok"]
            assert not report["checks"]["conversion"]["ok"]
            assert not report["ok"]

    def test_the_command_exits_non_zero_when_a_check_fails(self, alpha, monkeypatch) -> None:
        # A simulator fault: every call lasts the same 200 s, which no normal(180, 180) truncated to
        # [30, 900] draws; the durations check must object and the command exit non-zero.
        monkeypatch.setattr("simulation.services.draw_duration", lambda **_: 200.0)
        out = StringIO()
        with pytest.raises(CommandError):
            call_command("simulate", "--quick", "--tenant", "alpha", stdout=out)
        assert "[FAIL] durations" in out.getvalue() and "some checks FAILED" in out.getvalue()

    def test_latency_never_decides_a_virtual_run_but_checks_a_live_one(self, alpha, tmp_path) -> None:
        with schema_context(alpha.schema_name):
            # An assignment-time threshold no machine meets, however idle.
            RoutingSettings.objects.update(max_assignment_time_ms=0.0001)
            routing_config_forget()
        out, report_file = StringIO(), tmp_path / "report.json"
        call_command("simulate", "--quick", "--tenant", "alpha", "--json", str(report_file), stdout=out)
        latency = json.loads(report_file.read_text())["checks"]["latency"]
        assert latency["status"] == "info" and latency["ok"] is None and latency["exceeds_threshold"] is True
        assert "[INFO] latency (information, not part of the verdict)" in out.getvalue()
        assert "RESULT: all checks passed" in out.getvalue()
        with schema_context(alpha.schema_name):
            options = SimulationOptions(calls=10, agents=5, time_scale=5000, seed=3, live=True, inline_completion=True)
            report = run_simulation(options).report
        # A live run is a load test: there the latency is a check, and this threshold fails it.
        assert report["checks"]["latency"]["status"] == "fail" and not report["ok"]

    def test_a_live_run_reports_its_completion_lag_and_realised_talk_time(self, alpha) -> None:
        with schema_context(alpha.schema_name):
            options = SimulationOptions(calls=20, agents=5, time_scale=5000, seed=3, live=True, inline_completion=True)
            report = run_simulation(options).report
        assert report["clock"] == "live"
        assert "realised_durations" in report["checks"]
        lag = report["live"]["completion_lag_simulated_seconds"]
        assert lag["max"] >= lag["p50"] >= 0 and isinstance(report["live"]["unreliable"], bool)

    def test_cleanup_removes_simulation_data_only(self, alpha) -> None:
        with schema_context(alpha.schema_name):
            real_agent = make_agent(name="real person")
            run_simulation(SimulationOptions(calls=10, agents=3, time_scale=5000, seed=1, inline_completion=True))
            real_call = call_create(
                phone_number="+34600000001", call_type=CallType.objects.get(slug="llamada_tipo_2"), actor=SIMULATOR
            ).call
        out = StringIO()
        call_command("cleanup", "--tenant", "alpha", "--yes", stdout=out)
        assert "Removed" in out.getvalue()
        with schema_context(alpha.schema_name):
            assert not SimulationRun.objects.exists()
            assert list(Call.objects.values_list("id", flat=True)) == [real_call.id]
            assert list(Agent.objects.values_list("id", flat=True)) == [real_agent.id]
            assert not engine_drift()


class DemoAndStatusCommandTests:
    def test_demo_plays_live_traffic_on_a_tenant(self, alpha) -> None:
        out = StringIO()
        call_command("demo", "--tenant", "alpha", "--agents", "4", "--time-scale", "5000", "--calls", "12", stdout=out)
        assert "Demo traffic on alpha: 4 agents" in out.getvalue() and "Demo stopped after 12 calls" in out.getvalue()
        with schema_context(alpha.schema_name):
            run = SimulationRun.objects.get(source="demo")
            assert run.status == SimulationRun.Status.STOPPED
            calls = Call.objects.filter(simulation_run=run)
            assert calls.count() == 12 and Agent.objects.filter(name__startswith="sim agent ").count() == 4
            assert all(c.planned_duration_seconds for c in calls if c.assigned_at)

    def test_status_reports_services_and_each_tenant(self, alpha) -> None:
        with schema_context(alpha.schema_name):
            make_agent(name="x")
        out = StringIO()
        call_command("status", "--tenant", "alpha", stdout=out)
        text = out.getvalue()
        assert "database: up" in text and "redis: up" in text
        assert "alpha: AVAILABLE 1" in text and "queue 0" in text


class CommandMistakeTests:
    """A wrong tenant or a refused answer ends a command with one line and exit code 1 (a CommandError)."""

    def test_demo_says_it_waits_then_fails_on_an_unknown_tenant(self) -> None:
        out = StringIO()
        with pytest.raises(CommandError, match="No tenant 'nope'; run `manage"):
            call_command("demo", "--tenant", "nope", "--calls", "1", "--wait-for-tenant", "1", stdout=out)
        assert "Waiting up to 1 s for tenant 'nope'" in out.getvalue()

    def test_status_fails_on_an_unknown_tenant_before_checking_the_services(self) -> None:
        out = StringIO()
        with pytest.raises(CommandError, match="No tenant 'nope'"):
            call_command("status", "--tenant", "nope", stdout=out)
        assert "services:" not in out.getvalue()

    def test_simulate_refuses_an_invalid_slug_in_one_line(self) -> None:
        with pytest.raises(CommandError, match="slug must be 2-41 characters"):
            call_command("simulate", "--quick", "--tenant", "nope-missing", stdout=StringIO())

    def test_simulate_s_help_names_its_default_tenant(self) -> None:
        from django.core.management import load_command_class

        help_text = load_command_class("simulation", "simulate").create_parser("manage.py", "simulate").format_help()
        assert "default: sim" in " ".join(help_text.split())

    def test_cleanup_takes_no_answer_as_no_and_says_what_it_removed_in_words(self, alpha) -> None:
        with schema_context(alpha.schema_name):
            run_simulation(SimulationOptions(calls=5, agents=2, time_scale=5000, seed=1, inline_completion=True))

        # No terminal on stdin: the prompt reads end-of-file.
        result = subprocess.run(
            [sys.executable, "manage.py", "cleanup", "--tenant", "alpha"],
            cwd=BASE_DIR,
            env=service_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr and "Cancelled; nothing removed" in result.stderr
        with schema_context(alpha.schema_name):
            assert SimulationRun.objects.count() == 1
        out = StringIO()
        call_command("cleanup", "--tenant", "alpha", "--yes", stdout=out)
        assert "Removed 1 simulation run, 5 simulated calls and 2 simulated agents." in out.getvalue()
