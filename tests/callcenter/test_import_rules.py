"""The import rules between apps (pyproject [tool.importlinter], run by `make lint`) hold, and each
contract fails when a module breaks it: checked on a copy of the code with one violating module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]


def _copy_of_the_code(destination: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, destination / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", destination / "pyproject.toml")
    return destination


def _lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache"],
        cwd=where,
        env={**os.environ, "PYTHONPATH": str(where)},
        capture_output=True,
        text=True,
        timeout=300,
    )


class ImportRulesTests:
    def test_it_keeps_every_contract_today(self, tmp_path):
        result = _lint_imports(_copy_of_the_code(tmp_path))

        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 broken" in result.stdout

    @pytest.mark.parametrize(
        ("module", "source", "contract"),
        [
            ("assignment/planner.py", "import simulation.services\n", "The engine never imports simulation"),
            ("tenants/seeding.py", "import calls.models\n", "The public-schema tenants app imports no"),
            ("agents/ending.py", "import calls.services\n", "Apps are layered, no cycles"),
            ("calls/fast.py", "import redis\n", "Only the engine"),
            ("assignment/notify.py", "import webhooks.services\n", "The engine never imports simulation"),
            ("webhooks/cache.py", "import redis\n", "Only the engine"),
        ],
    )
    def test_it_fails_on_a_violation(self, tmp_path, module, source, contract):
        where = _copy_of_the_code(tmp_path)
        (where / module).write_text(source)

        result = _lint_imports(where)

        assert result.returncode != 0
        broken = result.stdout.split("Broken contracts", 1)[-1]
        assert contract in " ".join(broken.split()), result.stdout
        assert module.removesuffix(".py").replace("/", ".") in result.stdout
