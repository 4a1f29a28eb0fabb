"""What every command-line entry point (``manage.py``, the Celery app) does before Django starts:

- find the services `make run` chose: ``.local/services.env`` (written by ``scripts/services.py``)
  fills ``DATABASE_URL`` and ``REDIS_URL`` when they are not already set;
- report a service that does not answer in one sentence instead of a traceback.

Standard library only until Django is imported.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SERVICES_ENV = Path(__file__).resolve().parent.parent / ".local" / "services.env"


def load_services_env(path: Path = SERVICES_ENV) -> dict[str, str]:
    """Set each ``export NAME=value`` of ``path`` that the environment does not set already.
    Returns what was set."""
    if not path.exists():
        return {}
    loaded: dict[str, str] = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            if name not in os.environ:
                os.environ[name] = loaded[name] = value
    return loaded


def redacted(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def down_service_message(error: BaseException) -> str | None:
    """One sentence for an error that means Postgres or Redis does not answer, else None."""
    from django.db import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    hint = "Start them with `make services` (or `make run`), or point DATABASE_URL / REDIS_URL at running ones."
    if isinstance(error, OperationalError):
        url = redacted(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/callcenter"))
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"Postgres does not answer at {url}: {reason}\n{hint}"
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        url = redacted(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        return f"Redis does not answer at {url}: {error}\n{hint}"
    from assignment.engine import EngineUnavailable

    if isinstance(error, EngineUnavailable):
        return f"Redis does not answer at {redacted(os.environ.get('REDIS_URL', ''))}: {error}\n{hint}"
    return None


def run(main: Callable[[], None]) -> None:
    """Run a command; a down service ends it with exit code 1 and a message on stderr (add
    ``--traceback`` to see the whole story)."""
    try:
        main()
    except Exception as error:
        message = down_service_message(error)
        if message is None or "--traceback" in sys.argv:
            raise
        sys.stderr.write(f"error: {message}\n")
        sys.exit(1)
