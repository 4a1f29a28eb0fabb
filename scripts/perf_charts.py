"""Charts of a ``manage.py bench_scale`` report: one PNG per part, median and p99 against size.

.venv/bin/python scripts/perf_charts.py docs/performance/scale.json docs/performance/
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

CHARTS: list[tuple[str, str, str, str, list[tuple[str, str]]]] = [
    ("agents", "agents", "Redis claim and release against agents per tenant", "agents per tenant (log)",
     [("claim_ms", "claim"), ("release_ms", "release")]),
    ("queue", "waiting", "Arrival and release against calls waiting", "calls waiting (log; 0 drawn at 1)",
     [("arrive_ms", "arrival (enqueue)"),
      ("release_take_next_ms", "release, take next")]),
    ("tenants", "tenants", "One request against the number of tenants", "tenants (log)",
     [("post_calls_ms", "POST /calls"), ("complete_ms", "POST /calls/{id}/complete"),
      ("get_agents_ms", "GET /agents")]),
]  # fmt: skip


def chart(report: dict[str, Any], out: Path) -> list[Path]:
    written = []
    for part, size_key, title, xlabel, series in CHARTS:
        rows = report.get(part)
        if not rows:
            continue
        sizes = [max(row[size_key], 1) for row in rows]
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        for (key, label), color in zip(series, ["tab:blue", "tab:orange", "tab:green"], strict=False):
            ax.plot(sizes, [row[key]["p50"] for row in rows], "o-", color=color, label=f"{label}, median")
            ax.plot(sizes, [row[key]["p99"] for row in rows], "s--", color=color, alpha=0.6, label=f"{label}, p99")
        ax.set_xscale("log")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.45)  # room above the curves for the legend
        ax.set_xticks(sizes)
        ax.set_xticklabels([f"{row[size_key]:,}" for row in rows])
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("milliseconds")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, ncol=2, loc="upper center")
        fig.tight_layout()
        path = out / f"scale-{part}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = Path(argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for path in chart(json.loads(Path(argv[1]).read_text()), out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
