"""Settings for Callcenter, read from the environment (see ``.env.example``).

Defaults work for local development; with ``DEBUG=False`` the secret key, allowed hosts and the
phone-number encryption key must come from the environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from callcenter import testing
from callcenter.env import env_bool, env_float, env_int, env_list, env_str, env_url

# Lets admin and DRF generics be subscripted at run time (ModelAdmin[Agent]) for the type checker.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789abcdef"
# A Fernet key (32 url-safe base64 bytes). Only for development: production sets its own.
_DEV_FIELD_ENCRYPTION_KEY = "ZGV2LW9ubHktZmllbGQtZW5jcnlwdGlvbi1rZXktMDA="

if DEBUG:
    SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY)
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", ".localhost", "127.0.0.1", "[::1]", "testserver"])
    FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY", _DEV_FIELD_ENCRYPTION_KEY)
else:
    SECRET_KEY = env_str("SECRET_KEY")
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set in the environment when DEBUG is false.")
    FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY")
    if SECRET_KEY == _DEV_SECRET_KEY or FIELD_ENCRYPTION_KEY == _DEV_FIELD_ENCRYPTION_KEY:
        raise ImproperlyConfigured("SECRET_KEY and FIELD_ENCRYPTION_KEY must not use the development defaults.")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True

SHARED_APPS = [
    "django_tenants",
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
]

TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "audit",
    "routing",
    "events",
    "webhooks",
    "agents",
    "calls",
    "assignment",
    "simulation",
    "dashboard",
]

INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# Off on purpose: with it on, django-tenants leaks rows across tenants after a savepoint rollback.
TENANT_LIMIT_SET_CALLS = False
PUBLIC_SCHEMA_NAME = "public"
# The host suffix of tenant domains: tenant ``acme`` is served at ``acme.<TENANT_BASE_DOMAIN>``.
TENANT_BASE_DOMAIN = env_str("TENANT_BASE_DOMAIN", "localhost")

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "callcenter.middleware.RequestIdMiddleware",
    "callcenter.middleware.SecurityHeadersMiddleware",
    # Static files answer before tenant resolution: an asset needs no tenant, key or database.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenants.middleware.TenantResolutionMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "callcenter.urls"
PUBLIC_SCHEMA_URLCONF = "callcenter.urls_public"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "callcenter.wsgi.application"

DATABASE_URL = env_url(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/callcenter", schemes=("postgres", "postgresql", "pgsql")
)
_database = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 600, minimum=0))
# django-tenants' backend, minus a SET search_path round trip per query (see callcenter/db/base.py).
_database["ENGINE"] = "callcenter.db"
# Before a request reuses a connection, Django checks it (one SELECT 1): after Postgres restarts,
# the first request of each worker gets a fresh connection instead of an error.
_database["CONN_HEALTH_CHECKS"] = env_bool("DB_CONN_HEALTH_CHECKS", True)
# Every statement ends within DB_STATEMENT_TIMEOUT_MS: server-side by statement_timeout while
# Postgres answers, client-side by callcenter.db.watchdog when it does not (a black-holed network).
# A request then answers 503 database_unavailable instead of hanging its worker.
# 0 turns both off: management commands (a migration may rightly run long) and the test process
# (creating and dropping test databases) default to 0; web processes and workers to 5 s.
_long_running = (len(sys.argv) > 1 and Path(sys.argv[0]).name == "manage.py" and sys.argv[1] != "runserver") or (
    testing.under_pytest()
)
DB_STATEMENT_TIMEOUT_MS = env_int("DB_STATEMENT_TIMEOUT_MS", 0 if _long_running else 5000, minimum=0)
_database.setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 5, minimum=2)
# Parameters sent apart from the SQL (server-side binding) let psycopg prepare a statement after its
# fifth use on a connection, so Postgres stops parsing and planning the hot path's statements on
# every request (docs/performance.md). Postgres re-plans a prepared statement when the search path
# changes, so a tenant never runs another tenant's plan. Off for a pooler that cannot keep prepared
# statements (PgBouncer in transaction mode before 1.21).
_database["OPTIONS"]["server_side_binding"] = env_bool("DB_SERVER_SIDE_BINDING", True)
if _database["OPTIONS"]["server_side_binding"]:
    _database["OPTIONS"]["prepare_threshold"] = 5  # Django turns psycopg's automatic prepare off otherwise
# A lock wait longer than this is a bug or an outage, not a queue: fail the request instead of hanging.
_lock_timeout_ms = env_int("DB_LOCK_TIMEOUT_MS", 5000, minimum=100)
_database["OPTIONS"]["options"] = f"-c lock_timeout={_lock_timeout_ms} -c statement_timeout={DB_STATEMENT_TIMEOUT_MS}"
DATABASES = {"default": _database}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss", "unix"))

if testing.under_pytest() and "TEST_DATABASE_NAME" not in os.environ:
    # Parallel test runs on one machine each get their own test database and Redis database.
    _slot = testing.claim_slot()
    os.environ["TEST_DATABASE_NAME"] = f"test_callcenter_{_slot}"
    REDIS_URL = testing.redis_url_with_db(REDIS_URL, 8 + _slot)
_database["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME", "test_callcenter")}
# The assignment engine's Redis: REDIS_URL by default. ENGINE_REDIS_CLUSTER=true makes it a Redis
# Cluster (any node's URL); the cache and the Celery broker then stay on REDIS_URL, a plain Redis
# (neither django-redis nor Celery's Redis transport speaks the cluster protocol). See docs/scaling.md.
ENGINE_REDIS_URL = env_url("ENGINE_REDIS_URL", REDIS_URL, schemes=("redis", "rediss", "unix"))
ENGINE_REDIS_CLUSTER = env_bool("ENGINE_REDIS_CLUSTER", False)
# Socket timeouts keep a dead Redis from hanging a request: the engine fails fast, the client gets 503.
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 2.0, minimum=0.05)

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
        },
        "KEY_PREFIX": "cache",
    }
}

# The cache is an accelerator: when Redis is down, key lookups fall back to Postgres instead of failing.
DJANGO_REDIS_IGNORE_EXCEPTIONS = True
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

SESSION_ENGINE = "django.contrib.sessions.backends.db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files (admin, API docs, every app's static/ folder) are served by WhiteNoise from the web
# process itself, in every mode: no separate file server is needed. `collectstatic` (run by
# `make run`, the Docker image and the test session) writes them to STATIC_ROOT with content-hashed,
# pre-compressed copies, cached for a year by browsers. With DEBUG on, files are also found straight
# from the apps, so a new asset shows up without collecting again.
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / ".local" / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The dashboard's own login (supervisors need not be admin staff); the admin keeps its own.
LOGIN_URL = "/dashboard/login/"

# Requests bigger than this are refused before parsing (413): a call or agent body is tiny.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 64 * 1024, minimum=1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.HasTenantScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["callcenter.parsers.JsonParser"],
    "DEFAULT_SCHEMA_CLASS": "callcenter.api.AutoSchema",
    "EXCEPTION_HANDLER": "callcenter.errors.problem_exception_handler",
    "DEFAULT_METADATA_CLASS": "callcenter.metadata.Metadata",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Callcenter API",
    "DESCRIPTION": (
        "Assigns each incoming call to the agent who has been idle longest, and simulates traffic. "
        "Authenticate with `Authorization: Bearer <api key>` or `X-API-Key: <api key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "callcenter.api.document_public_endpoints",
    ],
    # The API key's two security schemes come from callcenter.api.ApiKeyAuthenticationScheme.
    "ENUM_NAME_OVERRIDES": {
        "AgentStatusEnum": "agents.models.Agent.Status",
        "CallStatusEnum": "calls.models.Call.Status",
        "AgentClientStatusEnum": "agents.apis.CLIENT_STATUSES",
    },
    # Swagger UI and ReDoc come from drf-spectacular-sidecar (pinned, served by WhiteNoise): /docs
    # and /redoc load nothing from another host.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # validatorUrl null: Swagger UI would otherwise fetch a badge from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None, "persistAuthorization": True},
}

# API keys: how long a lookup is cached (revocation also clears the cache at once), and the
# per-key rate limit (requests per second, with a burst of one second's worth).
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 5, minimum=0, maximum=60)
API_RATE_LIMIT_PER_SECOND = env_int("API_RATE_LIMIT_PER_SECOND", 2000, minimum=0)


def _celery_url(redis_url: str) -> str:
    """kombu has no ``unix://`` transport: ``unix:///path?db=N`` becomes ``redis+socket:///path?virtual_host=N``."""
    if not redis_url.startswith("unix://"):
        return redis_url
    path, _, query = redis_url[len("unix://") :].partition("?")
    db = next((part.split("=", 1)[1] for part in query.split("&") if part.startswith("db=")), "0")
    return f"redis+socket://{path}?virtual_host={db}"


CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", _celery_url(REDIS_URL))
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage lasts as long as it lasts: retry for ever (python -m callcenter.worker also
# replaces a worker that stopped consuming). Tasks in hand when the connection drops are given
# back to the queue rather than finished unacknowledged.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TIMEZONE = "UTC"
# Webhook deliveries have their own queue and worker (Procfile `webhooks`, compose `webhooks`): a
# backlog of deliveries, or receivers slow up to the timeout, never delays the sweep or simulation tasks.
CELERY_TASK_ROUTES = {"webhooks.tasks.webhook_deliver": {"queue": "webhooks"}}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Celery's own scheduler plus a heartbeat for /health (see callcenter/celery.py).
CELERY_BEAT_SCHEDULER = "callcenter.celery:HeartbeatScheduler"
CELERY_BEAT_SCHEDULE = {
    "sweep-every-second": {"task": "assignment.tasks.sweep_all_tenants", "schedule": 1.0},
    # Outbox events become webhook messages, and due retries are queued (webhooks.tasks).
    "webhooks-every-second": {"task": "webhooks.tasks.webhooks_tick_all_tenants", "schedule": 1.0},
}

# Webhooks (docs/webhooks.md). Targets resolving to loopback, private, link-local or metadata
# addresses are refused unless WEBHOOKS_ALLOW_PRIVATE (development and tests only).
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", False)
# One attempt's limit (connect, send, each read); a slow receiver holds one worker slot this long at most.
WEBHOOKS_TIMEOUT_SECONDS = env_float("WEBHOOKS_TIMEOUT_SECONDS", 5.0, minimum=0.1)
# Seconds before each retry (the Standard Webhooks / Svix schedule: about 27 hours in all), each
# multiplied by a random factor in [0.8, 1.2] (jitter). An attempt per entry, plus the first.
_retry_schedule = env_list("WEBHOOKS_RETRY_SCHEDULE", ["5", "300", "1800", "7200", "18000", "36000", "36000"])
try:
    WEBHOOKS_RETRY_SCHEDULE = [float(delay) for delay in _retry_schedule]
except ValueError:
    raise ImproperlyConfigured(f"WEBHOOKS_RETRY_SCHEDULE must list seconds, got {_retry_schedule!r}.") from None
if any(delay < 0 for delay in WEBHOOKS_RETRY_SCHEDULE):
    raise ImproperlyConfigured("WEBHOOKS_RETRY_SCHEDULE must list seconds >= 0.")
# An endpoint whose attempts have all failed for this long is disabled (the tenant is told).
WEBHOOKS_DISABLE_AFTER_SECONDS = env_int("WEBHOOKS_DISABLE_AFTER_SECONDS", 5 * 86400, minimum=0)
# After a rotation the previous secret keeps signing (beside the new one) this long.
WEBHOOKS_SECRET_GRACE_SECONDS = env_int("WEBHOOKS_SECRET_GRACE_SECONDS", 86400, minimum=0)

# Prometheus /metrics: when set, scrapes must send `Authorization: Bearer <token>`. /metrics lists
# every tenant, so production (DEBUG=false) refuses to start without a token.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
if not DEBUG and not METRICS_TOKEN:
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be set when DEBUG is false: /metrics lists every tenant. Scrape it with "
        "Authorization: Bearer <METRICS_TOKEN>."
    )

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "callcenter.logging.ContextFilter"},
        "routine_tasks": {"()": "callcenter.logging.RoutineTaskFilter"},
    },
    "formatters": {"json": {"()": "callcenter.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Where Celery logs each task received and finished, and each task beat sends.
        **{
            name: {"filters": ["routine_tasks"]}
            for name in ("celery.worker.strategy", "celery.app.trace", "celery.beat")
        },
    },
}

from callcenter.fields import validate_encryption_key  # noqa: E402

validate_encryption_key(FIELD_ENCRYPTION_KEY)
