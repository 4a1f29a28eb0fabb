"""``manage.py bench_scale`` at tiny sizes: the report has every part and every size asked for, the
numbers are counts and percentiles, and nothing it made is left behind. Nothing here asserts how fast
anything is."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management import call_command
from django.db import connection

from assignment import engine
from simulation.management.commands import bench_scale
from tenants.models import Tenant


class BenchScaleTests:
    def test_it_reports_every_size_and_drops_what_it_made(self, alpha, tmp_path: Path) -> None:
        path = tmp_path / "scale.json"
        call_command(
            "bench_scale", "--agents", "2,5", "--queue", "0,3", "--tenants", "1,2",
            "--calls", "30",
            "--repeat", "4", "--requests", "3", "--json", str(path),
        )  # fmt: skip
        report = json.loads(path.read_text())

        assert [row["agents"] for row in report["agents"]] == [2, 5]
        assert all(row["claim_ms"]["count"] == 4 and row["release_ms"]["count"] == 4 for row in report["agents"])
        assert [row["waiting"] for row in report["queue"]] == [0, 3]
        # An empty queue: the agent goes idle and the next call takes it; a queue: the agent takes the head.
        assert report["queue"][0]["outcomes"] == {"IDLE/ASSIGNED": 4}
        assert report["queue"][1]["outcomes"] == {"ASSIGNED/QUEUED": 4}
        assert [row["tenants"] for row in report["tenants"]] == [1, 2]
        first, second = report["tenants"]
        assert first["post_calls_ms"]["count"] == 3 and first["get_agents_ms"]["count"] == 3
        assert first["tenant_create_ms"]["count"] == 1 and second["tenant_create_ms"]["count"] == 1
        assert first["post_calls_ms"]["p50"] <= first["post_calls_ms"]["max"]

        lists = report["lists"]
        assert lists["calls"] == 30
        assert lists["requests_ms"]["GET /calls?status=ABANDONED"]["count"] == 3
        assert set(lists["requests_ms"]) >= {"GET /calls", "GET /agents/available", "GET /system/metrics"}
        assert "calls_call" in lists["plans"]["agent"]

        assert not Tenant.objects.filter(slug__startswith=bench_scale.TENANT_PREFIX).exists()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s", [bench_scale.TENANT_PREFIX + "%"])
            assert cursor.fetchone()[0] == 0
        assert engine.queue_depth(schema_name=bench_scale.ENGINE_SCHEMA)[0] == 0
        assert engine.forget_tenant(schema_name=f"{bench_scale.TENANT_PREFIX}1") == 0
        assert engine.forget_tenant(schema_name=bench_scale.LIST_TENANT) == 0  # no Redis state left
        assert Tenant.objects.filter(slug="alpha").exists()
