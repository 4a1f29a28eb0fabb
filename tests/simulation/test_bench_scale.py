"""``manage.py bench_scale`` at tiny sizes: the report's shape and that it drops what it made. Nothing
here asserts how fast anything is."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.db import connection

from assignment import engine
from tenants.models import Tenant


def _scale_schemas() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'scale\\_%%'")
        return [row[0] for row in cursor.fetchall()]


class BenchScaleTests:
    def test_it_measures_every_part_and_drops_its_tenants(self, tmp_path: Path):
        path = tmp_path / "scale.json"

        call_command(
            "bench_scale",
            "--agents=5",
            "--queue=0,3",
            "--calls=50",
            "--tenants=2",
            "--repetitions=3",
            f"--json={path}",
            stdout=StringIO(),
        )

        report = json.loads(path.read_text())
        assert [row["agents"] for row in report["agents"]] == [5]
        assert report["agents"][0]["claim_release_ms"]["count"] == 3
        assert report["agents"][0]["agents_available_ms"]["count"] == 3
        assert report["agents"][0]["system_metrics_ms"]["count"] == 3
        assert [row["queued"] for row in report["queue"]] == [0, 3]
        assert all(row["next_taken"] for row in report["queue"])
        assert report["queue"][1]["complete_take_next_ms"]["count"] == 3
        [calls] = report["calls"]
        assert calls["calls"] == 50
        variants = [row["variant"] for row in calls["lists"]]
        assert variants[0] == "first page" and len(variants) == 9
        for row in calls["lists"]:
            assert row["plans"], row["variant"]  # every list reads calls_call, and its plan is recorded
            assert "Execution Time" in row["plans"][0]["plan"]
        [tenants] = report["tenants"]
        assert tenants["tenants"] == 2
        assert tenants["schemas_in_database"] == 4  # the scratch tenant, the clone source and two clones
        assert tenants["clone_ms"]["count"] == 2
        assert tenants["call_life_ms"]["count"] == 3
        assert tenants["rss_bytes_after_one_request_each"] > 0
        # Cleanup: no scratch tenant, schema or engine state is left.
        assert not Tenant.objects.filter(slug__startswith="scale_").exists()
        assert _scale_schemas() == []
        assert not list(engine.client().scan_iter(match="*scale_*", count=500))
