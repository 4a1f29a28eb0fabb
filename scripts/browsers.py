#!/usr/bin/env python3
"""Make sure a Chromium executable exists for the Playwright browser tests.

Usage::

    python3 scripts/browsers.py ensure

Playwright drives the system's Chromium (``/usr/bin/chromium``); this project never
downloads a browser any other way. If it is missing and we run as root on a system with
``apt-get``, Debian's ``chromium`` package is installed. Otherwise nothing is installed
and the browser tests report the missing browser themselves. Always exits 0 (except for
a usage error).

Standard library only, so it can run before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


def log(message: str) -> None:
    print(f"browsers: {message}", flush=True)


def ensure() -> int:
    if CHROMIUM.exists():
        log(f"{CHROMIUM} present, nothing to do")
        return 0

    apt_get = shutil.which("apt-get")
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if not (is_root and apt_get):
        reason = "not running as root" if not is_root else "apt-get not found"
        log(f"{CHROMIUM} missing, {reason}: not installing it")
        return 0

    log(f"{CHROMIUM} missing: installing Debian's chromium package with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        [apt_get, "update", "-qq"],
        [apt_get, "install", "-y", "-qq", "chromium"],
    ):
        result = subprocess.run(command, env=env, check=False)
        if result.returncode != 0:
            log(f"`{' '.join(command)}` failed (exit code {result.returncode})")
            return 0

    if CHROMIUM.exists():
        log(f"installed {CHROMIUM}")
    else:
        log(f"apt-get finished but {CHROMIUM} is still missing")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ensure Chromium for browser tests.")
    parser.add_argument("command", choices=("ensure",))
    parser.parse_args(argv)
    return ensure()


if __name__ == "__main__":
    sys.exit(main())
