"""Health, system status and metrics, Prometheus exposition, JSON logs, and the deploy/ configs."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
import redis
import yaml
from django.db import connections

from assignment import engine
from callcenter.logging import ContextFilter, JsonFormatter
from tests.helpers import ApiClient, assert_problem

ROOT = Path(__file__).resolve().parents[2]
PROMQL_WORDS = {
    "sum", "by", "on", "rate", "increase", "histogram_quantile", "le", "tenant", "status", "state", "service",
    "instance", "without", "ignoring", "group_left", "group_right", "and", "or", "unless", "avg", "max", "min",
}  # fmt: skip


def _dead_redis() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, decode_responses=True)


def _make_traffic(client: ApiClient) -> list[dict]:
    client.post("/agents", {"name": "a", "agent_type": "agente_tipo_1", "status": "AVAILABLE"})
    calls = [
        client.post("/calls", {"phone_number": f"+3460000000{n}", "call_type": "llamada_tipo_1"}).json()
        for n in range(3)
    ]
    client.post(f"/calls/{calls[0]['id']}/complete", {"outcome": "OK"})
    return calls


class HealthTests:
    def test_it_is_503_naming_redis_when_redis_is_down(self, public=None) -> None:
        with mock.patch.object(engine, "_client", _dead_redis()), mock.patch.object(engine, "_scripts", {}):
            response = ApiClient(key=None).get("/health")
        assert response.status_code == 503
        body = response.json()
        assert "redis" in body["down"] and body["checks"]["redis"]["status"] == "down"
        assert body["checks"]["database"]["status"] == "up" and body["checks"]["database"]["ms"] >= 0

    def test_it_is_503_naming_the_database_when_postgres_is_down(self) -> None:
        # Really unreachable: the connection is closed and pointed at a port where nothing listens.
        connection = connections["default"]
        connection.close()
        settings_dict = connection.settings_dict
        saved = (settings_dict["HOST"], settings_dict["PORT"])
        settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", "1"
        try:
            response = ApiClient(key=None).get("/health")
        finally:
            connection.close()
            settings_dict["HOST"], settings_dict["PORT"] = saved
        assert response.status_code == 503
        body = response.json()
        assert "database" in body["down"] and "redis" not in body["down"] and "error" in body["checks"]["database"]
        assert body["checks"]["redis"]["status"] == "up"

    def test_it_is_alive_while_the_database_and_redis_are_down(self) -> None:
        connection = connections["default"]
        connection.close()
        settings_dict = connection.settings_dict
        saved = (settings_dict["HOST"], settings_dict["PORT"])
        settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", "1"
        try:
            with mock.patch.object(engine, "_client", _dead_redis()):
                response = ApiClient(key=None).get("/health/live")
        finally:
            connection.close()
            settings_dict["HOST"], settings_dict["PORT"] = saved
        assert response.status_code == 200 and response.json() == {"status": "ok"}

    def test_it_never_pings_the_workers(self) -> None:
        from callcenter.celery import app

        with mock.patch.object(app.control, "ping", side_effect=AssertionError("a blocking ping")) as ping:
            response = ApiClient(key=None).get("/health")
        assert response.status_code == 200 and not ping.called

    def test_it_reports_workers_and_beat_from_their_heartbeats(self) -> None:
        import time

        from callcenter.health import HEARTBEAT_MAX_AGE_SECONDS, heartbeat_checks

        engine.client().delete(engine.keys.HEARTBEATS)
        now = time.time()
        engine.heartbeat_write(process="worker:celery@a", now=now - 2)
        engine.heartbeat_write(process="worker:celery@b", now=now - HEARTBEAT_MAX_AGE_SECONDS - 1)
        engine.heartbeat_write(process="worker:celery@gone", now=now - 7200)
        engine.heartbeat_write(process="beat:host", now=now - 1)

        checks = heartbeat_checks(now=now)

        assert checks["workers"] == {"status": "up", "count": 1, "last_seen_seconds_ago": 2.0}
        assert checks["beat"]["status"] == "up" and checks["beat"]["count"] == 1
        # A process silent for an hour is forgotten.
        assert "worker:celery@gone" not in engine.client().hgetall(engine.keys.HEARTBEATS)

    def test_beat_writes_its_heartbeat_as_it_schedules(self, tmp_path: Path) -> None:
        import socket

        from callcenter.celery import HeartbeatScheduler, app

        engine.client().delete(engine.keys.HEARTBEATS)
        scheduler = HeartbeatScheduler(app=app, schedule_filename=str(tmp_path / "schedule"), lazy=True)
        scheduler.setup_schedule()
        with mock.patch.object(scheduler, "apply_async"):  # schedule nothing for real
            scheduler.tick()
        scheduler.close()

        assert f"beat:{socket.gethostname()}" in engine.client().hgetall(engine.keys.HEARTBEATS)

    def test_it_needs_no_key_and_ignores_one(self, alpha) -> None:
        # A scrape or probe may carry a stale key: /health still answers (no tenant is involved).
        response = ApiClient(key="cc_bogus_key").get("/health")
        assert response.status_code in (200, 503) and "checks" in response.json()


class SystemEndpointTests:
    def test_status_shows_this_tenant_now(self, alpha) -> None:
        client = alpha.client()
        _make_traffic(client)
        body = client.get("/system/status").json()
        assert body["tenant"] == "alpha"
        assert body["agents"]["BUSY"] == 1 and body["agents_total"] == 1
        assert body["queue_depth"] == 1 and body["oldest_wait_seconds"] >= 0
        assert body["active_calls"] == 1
        assert body["services"]["database"]["status"] == "up" and body["services"]["redis"]["status"] == "up"

    def test_metrics_have_the_reference_keys_and_values(self, alpha) -> None:
        client = alpha.client()
        _make_traffic(client)
        body = client.get("/system/metrics").json()
        for key in (
            "calls_assigned", "calls_completed", "calls_saturated", "last_assignment_time_ms",
            "avg_conversion_rate", "agent_utilization", "calls_abandoned", "queue_depth",
            "assignment_time_ms", "service_level", "conversion_by_cell",
        ):  # fmt: skip
            assert key in body, key
        assert body["calls_assigned"] == 2 and body["calls_completed"] == 1 and body["calls_saturated"] == 0
        assert body["avg_conversion_rate"] == 1.0 and body["agent_utilization"] == 1.0
        assert body["last_assignment_time_ms"] > 0 and body["assignment_time_ms"]["samples"] == 2
        assert body["assignment_time_ms"]["p50_ms"] <= body["assignment_time_ms"]["p99_ms"]
        assert body["conversion_by_cell"]["agente_tipo_1/llamada_tipo_1"] == {
            "configured": 0.3,
            "observed": 1.0,
            "calls": 1,
        }
        assert 0 <= body["service_level"] <= 1

    def test_a_tenant_never_sees_another_tenants_figures(self, alpha, beta) -> None:
        _make_traffic(alpha.client())
        status = beta.client().get("/system/status").json()
        metrics = beta.client().get("/system/metrics").json()
        assert status["tenant"] == "beta" and status["agents_total"] == 0 and status["active_calls"] == 0
        assert metrics["calls_assigned"] == 0 and metrics["assignment_time_ms"]["samples"] == 0

    def test_they_need_a_key(self) -> None:
        assert_problem(ApiClient(key=None).get("/system/metrics"), 401, "tenant_required")


def _scrape(headers: dict | None = None) -> tuple[int, str]:
    response = ApiClient(key=None).get("/metrics", headers=headers or {})
    return response.status_code, response.content.decode()


def _series_names(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


class PrometheusTests:
    def test_it_exports_our_series_for_every_tenant(self, alpha, beta) -> None:
        _make_traffic(alpha.client())
        status, text = _scrape()
        assert status == 200
        assert 'callcenter_assignment_seconds_count{tenant="alpha"} 2.0' in text
        assert 'callcenter_assignment_seconds_count{tenant="beta"} 0.0' in text
        assert 'callcenter_calls_total{state="COMPLETED",tenant="alpha"} 1.0' in text
        assert 'callcenter_queue_depth{tenant="alpha"} 1.0' in text
        assert 'callcenter_agents{status="BUSY",tenant="alpha"} 1.0' in text
        # Three calls: one completed, one still assigned, one waiting.
        assert 'callcenter_calls_received_total{tenant="alpha"} 3.0' in text
        assert 'callcenter_calls_current{state="ASSIGNED",tenant="alpha"} 1.0' in text
        assert 'callcenter_calls_current{state="QUEUED",tenant="alpha"} 1.0' in text
        assert 'callcenter_calls_total{state="QUEUED"' not in text  # a counter holds final states only
        assert 'callcenter_max_assignment_seconds{tenant="alpha"} 0.1' in text
        assert re.search(r"^callcenter_redis_memory_used_bytes \d", text, re.M)
        assert 'callcenter_service_up{service="redis"} 1.0' in text

    def test_it_requires_the_token_when_one_is_set(self, settings) -> None:
        settings.METRICS_TOKEN = "s3cret"
        assert _scrape()[0] == 401
        assert _scrape({"Authorization": "Bearer wrong"})[0] == 401
        status, text = _scrape({"Authorization": "Bearer s3cret"})
        assert status == 200 and "callcenter_agents" in text

    def test_the_calls_counter_only_goes_up_as_calls_end(self, alpha) -> None:
        client = alpha.client()
        calls = _make_traffic(client)  # 1 completed, 1 assigned, 1 waiting

        def completed() -> float:
            text = _scrape()[1]
            found = re.search(r'^callcenter_calls_total\{state="COMPLETED",tenant="alpha"\} (\S+)$', text, re.M)
            assert found, text[:2000]
            return float(found.group(1))

        before = completed()
        client.post(f"/calls/{calls[1]['id']}/complete", {"outcome": "KO"})  # the waiting call takes the agent
        middle = completed()
        client.post(f"/calls/{calls[2]['id']}/complete", {"outcome": "OK"})
        after = completed()

        assert (before, middle, after) == (1.0, 2.0, 3.0)


class WorkersGaugeTests:
    def test_it_counts_every_live_worker(self) -> None:
        import time

        engine.client().delete(engine.keys.HEARTBEATS)
        now = time.time()
        for name in ("a", "b", "c"):
            engine.heartbeat_write(process=f"worker:celery@{name}", now=now - 1)

        status, text = _scrape()

        assert status == 200
        assert "callcenter_workers 3.0" in text.splitlines()


class JsonLogTests:
    def test_every_line_names_the_tenant_and_request_and_hides_phone_numbers(self, alpha) -> None:
        from calls import apis

        stream = StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(ContextFilter())
        logger = logging.getLogger("calls.services")
        logger.addHandler(handler)
        real_create = apis.call_create

        def logging_create(**kwargs):
            logger.warning("creating call for %s", kwargs["phone_number"])
            return real_create(**kwargs)

        try:
            with mock.patch.object(apis, "call_create", logging_create):
                response = alpha.client().post(
                    "/calls",
                    {"phone_number": "+34600123456", "call_type": "llamada_tipo_1"},
                    headers={"X-Request-ID": "req-42"},
                )
        finally:
            logger.removeHandler(handler)
        assert response.status_code == 202
        line = json.loads(stream.getvalue().splitlines()[0])
        assert line["tenant"] == "alpha" and line["request_id"] == "req-42" and line["level"] == "WARNING"
        assert "+34600123456" not in stream.getvalue() and line["message"].startswith("creating call for +34***")

    def test_a_line_outside_a_request_names_the_schema(self, in_alpha) -> None:
        record = logging.LogRecord("task", logging.INFO, __file__, 1, "swept", None, None)
        ContextFilter().filter(record)
        assert json.loads(JsonFormatter().format(record))["tenant"] == "alpha"


def _exprs(obj) -> list[str]:
    if isinstance(obj, dict):
        found = [obj["expr"]] if isinstance(obj.get("expr"), str) else []
        return found + [e for value in obj.values() for e in _exprs(value)]
    if isinstance(obj, list):
        return [e for value in obj for e in _exprs(value)]
    return []


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\{\{[^}]*\}\}", "", expr)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+[smh]?", n) and "$" not in n}


class DeployConfigTests:
    @pytest.fixture
    def exported(self, alpha) -> set[str]:
        client = alpha.client()
        _make_traffic(client)
        client.get("/nope")  # a 404 so that the status series exist
        return _series_names(_scrape()[1])

    def test_every_alert_and_dashboard_query_names_a_series_we_export(self, exported) -> None:
        alerts = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
        rules = [rule for group in alerts["groups"] for rule in group["rules"]]
        assert {r["alert"] for r in rules} == {
            "AssignmentTimeOverThreshold",
            "HighErrorRate",
            "HighSaturation",
            "RedisMemoryHigh",
        }
        queries = [r["expr"] for r in rules]
        dashboards = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
        assert [d.stem for d in dashboards] == ["business", "performance", "system"]
        for path in dashboards:
            board = json.loads(path.read_text())
            assert board["uid"] and board["panels"]
            queries += _exprs(board["panels"])
        assert len(queries) > 15
        for query in queries:
            for name in _metric_names(query):
                assert name in exported, f"{name!r} in {query!r} is not exported"

    def test_the_prometheus_files_pass_promtool_or_a_structural_check(self, tmp_path) -> None:
        config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
        job = config["scrape_configs"][0]
        assert job["metrics_path"] == "/metrics" and job["authorization"]["type"] == "Bearer"
        assert config["rule_files"] == ["alerts.yml"]
        assert (ROOT / "deploy/prometheus/metrics_token").read_text() == ""  # no default secret
        if shutil.which("promtool"):
            result = subprocess.run(
                ["promtool", "check", "config", "deploy/prometheus/prometheus.yml"],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert "4 rules found" in result.stdout

    def test_the_compose_file_wires_the_whole_stack(self) -> None:
        text = (ROOT / "docker-compose.yml").read_text()
        compose = yaml.safe_load(text)
        services = compose["services"]
        assert {"postgres", "redis", "web", "worker", "beat", "prometheus", "grafana", "bootstrap"} <= set(services)
        for name, service in services.items():
            if service.get("restart") != "no":
                assert "healthcheck" in service, name
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if source.startswith("./"):
                    assert (ROOT / source).exists(), (name, source)
        assert "/health" in " ".join(services["web"]["healthcheck"]["test"])
        assert "/schema" not in " ".join(services["web"]["healthcheck"]["test"])
        assert services["beat"]["healthcheck"]["test"][-2:] == ["heartbeat_check", "beat"]
        assert services["worker"]["healthcheck"]["test"][-2:] == ["heartbeat_check", "worker"]
        # Webhook deliveries have their own worker, on their own queue (settings.CELERY_TASK_ROUTES).
        assert services["webhooks"]["command"][-6:-2] == ["--queues", "webhooks", "--concurrency", "2"]
        assert services["bootstrap"]["command"] == ["python", "manage.py", "bootstrap"]
        assert services["bootstrap"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        command = ["docker-compose", "config", "-q"] if shutil.which("docker-compose") else None
        if command:
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr

    def test_the_compose_file_pins_images_and_has_no_default_secret(self) -> None:
        text = (ROOT / "docker-compose.yml").read_text()
        services = yaml.safe_load(text)["services"]
        for name, service in services.items():
            if "image" in service and "build" not in service:
                tag = service["image"].rpartition(":")[2]
                assert re.match(r"v?\d+\.\d+", tag), (name, service["image"])  # a release: not latest, not 16
        for secret in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "METRICS_TOKEN", "POSTGRES_PASSWORD",
                       "GRAFANA_ADMIN_PASSWORD", "PLATFORM_ADMIN_PASSWORD"):  # fmt: skip
            assert f"${{{secret}:?" in text, secret
            assert f"${{{secret}:-" not in text, secret
        assert services["web"]["environment"]["DEBUG"] == "false"
        dockerfile = (ROOT / "Dockerfile").read_text()
        assert re.search(r"^FROM python:3\.11\.\d+-slim", dockerfile, re.M)
        assert "collectstatic" in dockerfile


class WebServerLogTests:
    def test_the_dashboard_s_poll_stays_out_of_the_access_log(self, web_server) -> None:
        from tests.processes import wait_for

        for _ in range(3):
            web_server.request("GET", "/dashboard/api/state", headers={"Host": "alpha.localhost"})
        web_server.request("GET", "/health/live")

        wait_for(lambda: "/health/live" in web_server.child.log(), seconds=30, what=web_server.child.log())
        assert '"GET /dashboard/api/state' not in web_server.child.log()

    def test_its_control_socket_is_its_own(self, web_server) -> None:
        from tests.conftest import BASE_DIR

        # Not gunicorn's default ~/.gunicorn/gunicorn.ctl, which every server of the machine would share.
        socket_path = BASE_DIR / ".local" / f"gunicorn-{web_server.child.process.pid}.ctl"
        from tests.processes import wait_for

        wait_for(socket_path.exists, seconds=30, what=web_server.child.log())
