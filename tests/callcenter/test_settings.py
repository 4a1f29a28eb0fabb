"""Settings come from the environment through small typed readers that fail loudly on bad values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from callcenter.env import env_bool, env_float, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parents[2]
# Variables the tests set themselves; anything inherited from the developer's shell is dropped.
CONTROLLED = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "FIELD_ENCRYPTION_KEY",
    "SECURE_HSTS_SECONDS",
    "METRICS_TOKEN",
    "TEST_DATABASE_NAME",
    "PYTEST_VERSION",
    "PYTEST_CURRENT_TEST",
)
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-0123456789",
    "ALLOWED_HOSTS": "callcenter.example.com,.callcenter.example.com",
    "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "METRICS_TOKEN": "a-scrape-token",
}
SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({name: getattr(s, name, None) for name in "
    "('DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', 'ALLOWED_HOSTS')}))"
)


@pytest.fixture(autouse=True)
def _database():
    """These tests read no tenant data: skip the harness's per-test tenant reset (same name)."""
    yield


def _boot(environment: dict[str, str], code: str = "import django; django.setup()") -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in CONTROLLED}
    env.update(DJANGO_SETTINGS_MODULE="callcenter.settings", **environment)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )


class EnvHelpersTests:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False), ("False", False), ("no", False)],
    )
    def test_it_reads_booleans(self, raw, expected):
        assert env_bool("FLAG", not expected, environ={"FLAG": raw}) is expected

    @pytest.mark.parametrize("raw", ["maybe", "2", "yes please", "t"])
    def test_it_refuses_a_bad_boolean_naming_the_variable(self, raw):
        with pytest.raises(ImproperlyConfigured, match=r"^FLAG must be a boolean.*" + repr(raw)):
            env_bool("FLAG", True, environ={"FLAG": raw})

    def test_it_uses_the_default_when_a_variable_is_unset(self):
        assert env_bool("FLAG", True, environ={}) is True
        assert env_int("COUNT", 7, environ={}) == 7
        assert env_float("RATIO", 0.5, environ={}) == 0.5
        assert env_str("NAME", "dev", environ={}) == "dev"
        assert env_list("HOSTS", ["a"], environ={}) == ["a"]
        assert env_url("URL", "redis://x/0", schemes=("redis",), environ={}) == "redis://x/0"

    def test_it_reads_integers_within_their_range(self):
        assert env_int("COUNT", 0, minimum=1, maximum=10, environ={"COUNT": " 10 "}) == 10
        assert env_int("COUNT", 0, minimum=1, environ={"COUNT": "1"}) == 1

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ("abc", r"^COUNT must be an integer, got 'abc'"),
            ("1.5", r"^COUNT must be an integer"),
            ("", r"^COUNT must be an integer"),
            ("0", r"^COUNT must be >= 1, got 0"),
            ("11", r"^COUNT must be <= 10, got 11"),
        ],
    )
    def test_it_refuses_a_bad_integer_naming_the_variable(self, raw, message):
        with pytest.raises(ImproperlyConfigured, match=message):
            env_int("COUNT", 5, minimum=1, maximum=10, environ={"COUNT": raw})

    def test_it_reads_floats_and_checks_their_minimum(self):
        assert env_float("TIMEOUT", 1.0, minimum=0.05, environ={"TIMEOUT": "0.25"}) == 0.25
        with pytest.raises(ImproperlyConfigured, match=r"^TIMEOUT must be >= 0.05"):
            env_float("TIMEOUT", 1.0, minimum=0.05, environ={"TIMEOUT": "0.01"})
        with pytest.raises(ImproperlyConfigured, match=r"^TIMEOUT must be a number"):
            env_float("TIMEOUT", 1.0, environ={"TIMEOUT": "soon"})

    def test_it_requires_a_variable_without_a_default(self):
        with pytest.raises(ImproperlyConfigured, match=r"^SECRET_KEY must be set"):
            env_str("SECRET_KEY", environ={})
        assert env_str("SECRET_KEY", environ={"SECRET_KEY": "s3cret"}) == "s3cret"

    def test_it_splits_lists_on_commas(self):
        assert env_list("HOSTS", [], environ={"HOSTS": " a.example , ,b.example,"}) == ["a.example", "b.example"]
        assert env_list("HOSTS", ["default"], environ={"HOSTS": ""}) == []

    @pytest.mark.parametrize("raw", ["http://x", "redis", "localhost:6379", "", "redis:/x"])
    def test_it_refuses_a_url_with_the_wrong_scheme_naming_the_variable(self, raw):
        with pytest.raises(ImproperlyConfigured, match=r"^REDIS_URL must be a URL with scheme redis or rediss"):
            env_url("REDIS_URL", "redis://127.0.0.1/0", schemes=("redis", "rediss"), environ={"REDIS_URL": raw})

    def test_it_accepts_a_url_with_an_allowed_scheme(self):
        value = env_url(
            "REDIS_URL", "redis://a/0", schemes=("redis", "rediss"), environ={"REDIS_URL": "rediss://b:6380/2"}
        )

        assert value == "rediss://b:6380/2"


# id -> (environment, the variable the error must name)
BAD_STARTS: dict[str, tuple[dict[str, str], str]] = {
    "debug-not-a-boolean": ({"DEBUG": "maybe"}, "DEBUG"),
    "production-without-secret-key": ({"DEBUG": "false", "ALLOWED_HOSTS": "example.com"}, "SECRET_KEY"),
    "production-without-allowed-hosts": ({"DEBUG": "false", "SECRET_KEY": PRODUCTION["SECRET_KEY"]}, "ALLOWED_HOSTS"),
    "production-with-blank-allowed-hosts": ({**PRODUCTION, "ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS"),
    "production-with-empty-encryption-key": ({**PRODUCTION, "FIELD_ENCRYPTION_KEY": ""}, "FIELD_ENCRYPTION_KEY"),
    "short-encryption-key": ({"FIELD_ENCRYPTION_KEY": "short"}, "FIELD_ENCRYPTION_KEY"),
    "production-with-short-encryption-key": ({**PRODUCTION, "FIELD_ENCRYPTION_KEY": "short"}, "FIELD_ENCRYPTION_KEY"),
    "redis-url-not-redis": ({"REDIS_URL": "http://x"}, "REDIS_URL"),
    "database-url-not-postgres": ({"DATABASE_URL": "mysql://db/callcenter"}, "DATABASE_URL"),
    "rate-limit-not-an-integer": ({"API_RATE_LIMIT_PER_SECOND": "lots"}, "API_RATE_LIMIT_PER_SECOND"),
    "key-cache-too-long": ({"API_KEY_CACHE_SECONDS": "3600"}, "API_KEY_CACHE_SECONDS"),
    "negative-hsts": ({**PRODUCTION, "SECURE_HSTS_SECONDS": "-1"}, "SECURE_HSTS_SECONDS"),
    "production-with-open-metrics": ({**PRODUCTION, "METRICS_TOKEN": ""}, "METRICS_TOKEN"),
}


@pytest.fixture(scope="module")
def bad_starts() -> dict[str, subprocess.CompletedProcess[str]]:
    """Every bad start-up at once (each is a separate interpreter, so they run in parallel)."""
    with ThreadPoolExecutor(max_workers=len(BAD_STARTS)) as pool:
        futures = {name: pool.submit(_boot, environment) for name, (environment, _) in BAD_STARTS.items()}
        return {name: future.result() for name, future in futures.items()}


class SettingsTests:
    @pytest.mark.parametrize("case", list(BAD_STARTS))
    def test_it_refuses_to_start_with_a_bad_value_naming_the_variable(self, bad_starts, case):
        result = bad_starts[case]
        variable = BAD_STARTS[case][1]

        assert result.returncode != 0, result.stdout
        last_line = result.stderr.strip().splitlines()[-1]
        assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: "), result.stderr[-2000:]
        assert variable in last_line, last_line

    def test_it_refuses_the_development_secrets_in_production(self):
        result = _boot({**PRODUCTION, "SECRET_KEY": "dev-only-insecure-secret-key-change-me-0123456789abcdef"})

        assert result.returncode != 0
        assert "must not use the development defaults" in result.stderr

    def test_it_starts_in_production_with_secure_cookies_and_hsts(self):
        result = _boot(PRODUCTION, code=SHOW)

        assert result.returncode == 0, result.stderr[-2000:]
        loaded = json.loads(result.stdout.strip().splitlines()[-1])
        assert loaded["DEBUG"] is False
        assert loaded["SESSION_COOKIE_SECURE"] is True
        assert loaded["CSRF_COOKIE_SECURE"] is True
        assert loaded["SECURE_HSTS_SECONDS"] > 0
        assert loaded["ALLOWED_HOSTS"] == ["callcenter.example.com", ".callcenter.example.com"]

    def test_it_starts_for_development_without_any_production_variable(self):
        result = _boot({}, code=SHOW)

        assert result.returncode == 0, result.stderr[-2000:]
        loaded = json.loads(result.stdout.strip().splitlines()[-1])
        assert loaded["DEBUG"] is True
        assert "localhost" in loaded["ALLOWED_HOSTS"]
