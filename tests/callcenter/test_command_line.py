"""The command line as a newcomer meets it: every command finds the services `make run` chose,
explains every argument, reports a down service in one sentence, and routine task logs stay quiet."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command, get_commands, load_command_class

from callcenter.cli import load_services_env, redacted
from callcenter.logging import RoutineTaskFilter
from tests.conftest import BASE_DIR, service_env

PROJECT_APPS = {"tenants", "agents", "calls", "assignment", "simulation", "audit", "dashboard", "webhooks"}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**service_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


class ServicesEnvTests:
    def test_it_fills_what_the_environment_does_not_set(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        env_file = tmp_path / "services.env"
        env_file.write_text(
            "# written by scripts/services.py up\n"
            "export DATABASE_URL='postgres://postgres@%2Ftmp%2Fpg/callcenter'\n"
            "export REDIS_URL=redis://127.0.0.1:6399/0\n"
        )
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/5")

        loaded = load_services_env(env_file)

        assert loaded == {"DATABASE_URL": "postgres://postgres@%2Ftmp%2Fpg/callcenter"}
        assert os.environ["DATABASE_URL"] == "postgres://postgres@%2Ftmp%2Fpg/callcenter"
        assert os.environ["REDIS_URL"] == "redis://127.0.0.1:6379/5"  # what is set wins

    def test_it_does_nothing_without_the_file(self, tmp_path: Path):
        assert load_services_env(tmp_path / "missing.env") == {}

    def test_it_never_prints_a_password(self):
        assert redacted("postgres://app:s3cret@db:5432/x") == "postgres://app:***@db:5432/x"
        assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


class DownServiceTests:
    def test_a_command_reports_postgres_down_in_one_sentence(self, alpha):
        result = _manage("status", DATABASE_URL="postgres://app:pw@127.0.0.1:1/callcenter")

        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert "Postgres does not answer at postgres://app:***@127.0.0.1:1/callcenter" in result.stderr
        assert "make services" in result.stderr

    def test_a_command_reports_redis_down_in_one_sentence(self, alpha):
        result = _manage("reconcile", "--tenant", "alpha", "--check", REDIS_URL="redis://127.0.0.1:1/0")

        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert "Redis does not answer at redis://127.0.0.1:1/0" in result.stderr

    def test_status_shows_workers_from_their_heartbeats(self, alpha):
        result = _manage("status", "--tenant", "alpha")

        assert result.returncode == 0, result.stderr
        assert "services: degraded" in result.stdout  # no worker or beat runs here
        assert "workers: down (no heartbeat in the last 15 s)" in result.stdout
        assert "alpha:" in result.stdout


class CommandHelpTests:
    def test_every_argument_of_every_project_command_is_explained(self):
        ours = {name: app for name, app in get_commands().items() if app in PROJECT_APPS}
        assert {"status", "demo", "cleanup", "simulate", "bench", "info", "tenant_create"} <= set(ours)
        missing = []
        for name, app in ours.items():
            command = load_command_class(app, name)
            assert command.help, name
            parser = command.create_parser("manage.py", name)
            base = load_command_class("django.core", "check").create_parser("manage.py", "check")
            inherited = {option for action in base._actions for option in action.option_strings}
            for action in parser._actions:
                if set(action.option_strings) & inherited or action.dest == "help":
                    continue
                if not action.help:
                    missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
        assert not missing, missing

    def test_every_option_with_a_default_shows_it(self):
        ours = {name: app for name, app in get_commands().items() if app in PROJECT_APPS}
        hidden = []
        for name, app in ours.items():
            parser = load_command_class(app, name).create_parser("manage.py", name)
            for action in parser._actions:
                if action.default in (None, False, "==SUPPRESS==") or not action.option_strings:
                    continue
                if action.option_strings[0] in {"--verbosity", "-v"} or "default" in (action.help or "").lower():
                    continue
                hidden.append(f"{name} {action.option_strings[0]} (default {action.default!r})")
        assert not hidden, hidden


class InfoCommandTests:
    def test_it_prints_the_logins_with_the_port_asked_for(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        from tenants import banner

        monkeypatch.setattr(banner, "CREDENTIALS", tmp_path / "demo-credentials.json")
        banner.credentials_save(
            {"slug": "demo", "admin_password": "a-pw", "platform_password": "p-pw", "api_key": "cc_1234abcd_secret"}
        )
        out = StringIO()

        call_command("info", "--port", "8123", stdout=out)

        text = out.getvalue()
        assert "http://demo.localhost:8123/admin/   (login admin / a-pw)" in text
        assert "http://localhost:8123/admin/   (login platform / p-pw)" in text
        assert "http://localhost:8123/docs" in text and "cc_1234abcd_secret" in text
        assert "nothing answers on port 8123" in text


class RoutineTaskLogTests:
    @staticmethod
    def _record(logger: str, message: str) -> logging.LogRecord:
        return logging.LogRecord(logger, logging.INFO, __file__, 1, message, None, None)

    def test_it_keeps_the_per_second_sweep_out_of_the_info_log(self):
        record = self._record("celery.app.trace", "Task assignment.tasks.sweep_tenant_task[1] succeeded in 0.01s")

        assert RoutineTaskFilter().filter(record) is False
        assert record.levelname == "DEBUG"

    def test_it_shows_them_at_debug(self):
        logging.getLogger("celery.beat").setLevel(logging.DEBUG)
        try:
            record = self._record("celery.beat", "Scheduler: Sending due task sweep-every-second (...)")
            assert RoutineTaskFilter().filter(record) is True
        finally:
            logging.getLogger("celery.beat").setLevel(logging.NOTSET)

    def test_it_keeps_other_tasks_at_info(self):
        record = self._record("celery.app.trace", "Task simulation.tasks.complete_call[1] succeeded in 0.01s")

        assert RoutineTaskFilter().filter(record) is True
        assert record.levelname == "INFO"

    def test_the_live_simulation_tick_is_routine_too(self):
        record = self._record("celery.worker.strategy", "Task simulation.tasks.simulation_live_tick[1] received")

        assert RoutineTaskFilter().filter(record) is False


class HeartbeatCheckTests:
    def test_it_passes_on_a_fresh_heartbeat_of_this_host_and_fails_without(self):
        import socket
        import time

        from django.core.management.base import CommandError

        from assignment import engine

        engine.client().delete(engine.keys.HEARTBEATS)
        with pytest.raises(CommandError, match="No beat heartbeat"):
            call_command("heartbeat_check", "beat", stdout=StringIO())

        engine.heartbeat_write(process=f"beat:{socket.gethostname()}", now=time.time())
        try:
            out = StringIO()
            call_command("heartbeat_check", "beat", stdout=out)

            assert socket.gethostname() in out.getvalue()
            with pytest.raises(CommandError):
                call_command("heartbeat_check", "worker", stdout=StringIO())
        finally:
            # A beat heartbeat left behind would make the next tests' /health see a beat running.
            engine.heartbeat_forget(process=f"beat:{socket.gethostname()}")


class MakeStopTests:
    def test_it_stops_what_make_run_started_and_nothing_else(self, tmp_path: Path):
        from tests.processes import wait_for

        procfile = tmp_path / "Procfile"
        procfile.write_text("sleeper: sleep 600\n")
        pid_file = tmp_path / "run.pid"
        honcho = subprocess.Popen(
            [str(BASE_DIR / ".venv" / "bin" / "honcho"), "start", "-f", str(procfile)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def make_stop() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["make", "--no-print-directory", "stop", f"RUN_PID={pid_file}"],
                cwd=BASE_DIR,
                capture_output=True,
                text=True,
                timeout=60,
            )

        def children() -> list[str]:
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(honcho.pid)], capture_output=True, text=True)
            return out.stdout.split()

        try:
            wait_for(children, seconds=30, what="honcho's process")
            sleeper = children()
            pid_file.write_text(str(os.getpid()))  # a stale file naming another process: left alone
            ignored = make_stop()
            assert ignored.returncode == 0 and "Nothing started by make run is running." in ignored.stdout
            pid_file.write_text(str(honcho.pid))

            result = make_stop()

            assert result.returncode == 0, result.stdout + result.stderr
            assert "Stopped." in result.stdout and not pid_file.exists()
            assert honcho.poll() is not None
            wait_for(lambda: not [pid for pid in sleeper if Path(f"/proc/{pid}").exists()], seconds=10, what="sleeper")
        finally:
            if honcho.poll() is None:
                honcho.kill()
                honcho.wait()


class BenchEngineTests:
    def test_it_prints_progress_on_stderr_and_only_the_report_on_stdout(self):
        import json

        out, err = StringIO(), StringIO()

        call_command("bench", "--engine", "--iterations", "50", stdout=out, stderr=err)

        assert "50/50 claims" in err.getvalue()
        assert set(json.loads(out.getvalue())) == {"claim_ms", "mean_claim_ms"}
