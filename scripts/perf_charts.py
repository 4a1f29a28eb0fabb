"""Charts of a ``manage.py bench_scale`` report: one PNG per part, written beside the report.

.venv/bin/python scripts/perf_charts.py docs/performance/scale.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _lines(ax: Any, xs: list[int], rows: list[dict[str, Any]], key: str, label: str, color: str) -> None:
    ax.plot(xs, [row[key]["p50"] for row in rows], marker="o", color=color, label=f"{label} median")
    ax.plot(xs, [row[key]["p99"] for row in rows], marker="o", linestyle="--", color=color, label=f"{label} p99")


def _save(fig: Any, out: Path) -> None:
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def agents_chart(rows: list[dict[str, Any]], out: Path) -> None:
    xs = [row["agents"] for row in rows]
    fig, ax = plt.subplots(figsize=(8, 5))
    _lines(ax, xs, rows, "claim_release_ms", "engine claim + release", "tab:blue")
    _lines(ax, xs, rows, "agents_available_ms", "GET /agents/available", "tab:orange")
    _lines(ax, xs, rows, "system_metrics_ms", "GET /system/metrics (uncached)", "tab:green")
    ax.set(xscale="log", yscale="log", xlabel="agents in the tenant", ylabel="ms", title="Cost per operation vs agents")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out)


def queue_chart(rows: list[dict[str, Any]], out: Path) -> None:
    xs = [row["queued"] for row in rows]
    fig, ax = plt.subplots(figsize=(8, 5))
    _lines(ax, xs, rows, "enqueue_ms", "POST /calls (queued, 202)", "tab:blue")
    _lines(ax, xs, rows, "complete_take_next_ms", "complete (agent takes the next call)", "tab:orange")
    ax.set_xscale("symlog", linthresh=1)
    ax.set(xlabel="calls waiting (0 shown at the origin)", ylabel="ms", title="Cost per operation vs queue length")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out)


def calls_chart(block: dict[str, Any], out: Path) -> None:
    lists = block["lists"]
    labels = [row["variant"] for row in lists]
    fig, ax = plt.subplots(figsize=(9, 5))
    positions = range(len(lists))
    ax.barh([p - 0.2 for p in positions], [row["ms"]["p50"] for row in lists], height=0.4, label="median")
    ax.barh([p + 0.2 for p in positions], [row["ms"]["p99"] for row in lists], height=0.4, label="p99")
    ax.set_yticks(list(positions), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set(xlabel="ms per request (log scale)", title=f"GET /calls with {block['calls']:,} calls stored")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out)


def tenants_chart(rows: list[dict[str, Any]], out: Path) -> None:
    xs = [row["tenants"] for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5))
    _lines(left, xs, rows, "call_life_ms", "POST /calls + complete", "tab:blue")
    _lines(left, xs, rows, "clone_ms", "create one schema (clone)", "tab:orange")
    left.set(xscale="log", yscale="log", xlabel="tenant schemas", ylabel="ms", title="Per-request and per-tenant cost")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    right.plot(xs, [row["migrate_schemas_seconds"] for row in rows], marker="o", color="tab:red")
    right.set(
        xscale="log", xlabel="tenant schemas", ylabel="migrate_schemas, s (up to date)", title="Migration, memory"
    )
    right.grid(True, which="both", alpha=0.3)
    memory = right.twinx()
    memory.plot(
        xs,
        [row["rss_bytes_after_one_request_each"] / 2**20 for row in rows],
        marker="s",
        color="tab:purple",
        label="process RSS after one request per tenant",
    )
    memory.set_ylabel("RSS, MiB", color="tab:purple")
    memory.set_ylim(0, max(row["rss_bytes_after_one_request_each"] for row in rows) / 2**20 * 1.3)
    right.plot([], [], marker="o", color="tab:red", label="migrate_schemas, s")
    right.plot([], [], marker="s", color="tab:purple", label="process RSS, MiB")
    right.legend(fontsize=8, loc="upper left")
    _save(fig, out)


def main(path: str) -> None:
    report = json.loads(Path(path).read_text())
    folder = Path(path).parent
    if report.get("agents"):
        agents_chart(report["agents"], folder / "scale-agents.png")
    if report.get("queue"):
        queue_chart(report["queue"], folder / "scale-queue.png")
    if report.get("calls"):
        calls_chart(report["calls"][-1], folder / "scale-calls.png")
    if report.get("tenants"):
        tenants_chart(report["tenants"], folder / "scale-tenants.png")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/performance/scale.json")
