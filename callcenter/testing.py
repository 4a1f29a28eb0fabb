"""Isolation of parallel test runs on one machine.

Under pytest, each run claims a free slot N (an exclusive ``flock`` held for the life of the
process) and uses its own test database (``test_callcenter_N``) and Redis database (``8 + N``), so
two runs never reset each other's tenants. Set TEST_DATABASE_NAME to choose the database yourself.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO

SLOTS = 8
_held: IO[str] | None = None


def claim_slot(lock_dir: Path | None = None) -> int:
    """Slots are machine-wide (in the temp directory): two checkouts share one Postgres and Redis."""
    global _held
    lock_dir = lock_dir or Path(tempfile.gettempdir()) / "callcenter-test-slots"
    lock_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(SLOTS):
        handle = (lock_dir / f"test-slot-{slot}.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _held = handle
        return slot
    raise RuntimeError(f"all {SLOTS} parallel test slots are busy")


def redis_url_with_db(url: str, db: int) -> str:
    if url.startswith("unix://"):
        path, _, query = url.partition("?")
        rest = [part for part in query.split("&") if part and not part.startswith("db=")]
        return f"{path}?{'&'.join([*rest, f'db={db}'])}"
    scheme, _, remainder = url.partition("://")
    host, _, _ = remainder.partition("/")
    return f"{scheme}://{host}/{db}"


def under_pytest() -> bool:
    return "PYTEST_VERSION" in os.environ
