"""BacktestLab settings: one module, configured by environment variables.

Defaults run the whole lab on one machine with no servers: SQLite (WAL) under ``var/`` and kombu's
filesystem transport under ``var/broker``. Set ``DATABASE_URL`` / ``CELERY_BROKER_URL`` for
PostgreSQL and Redis.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from backtestlab.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("BACKTESTLAB_VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off "
            "(set DEBUG=1 for local development, or export SECRET_KEY=<50+ random characters>)"
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on-" + "x" * 20

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "apps.market",
    "apps.strategies",
    "apps.optimization",
    "apps.lab",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "backtestlab.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "backtestlab.middleware.BodySizeLimitMiddleware",
    "backtestlab.middleware.NulCharacterMiddleware",  # after the size check: it reads forms
]

ROOT_URLCONF = "backtestlab.urls"
WSGI_APPLICATION = "backtestlab.wsgi.application"
ASGI_APPLICATION = "backtestlab.asgi.application"

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

# --- database ---------------------------------------------------------------------------------
_default_db = f"sqlite:///{VAR_DIR / 'backtestlab.sqlite3'}"
_db_url = env_str("DATABASE_URL", _default_db)
try:
    DATABASES = {"default": dj_database_url.parse(_db_url, conn_max_age=60)}
except Exception as exc:  # dj_database_url raises several types for a bad URL
    raise ImproperlyConfigured(
        f"DATABASE_URL is not a database URL ({exc}); "
        "send e.g. postgres://user@127.0.0.1:5432/test or sqlite:////abs/path/db.sqlite3"
    ) from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # WAL lets the web server and the worker write at once; IMMEDIATE transactions take the
    # write lock up front so two writers queue on `timeout` instead of failing with "locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth, i18n, static -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/lab/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

DATASET_DIR = Path(env_str("DATASET_DIR", str(VAR_DIR / "datasets"))).resolve()
try:
    DATASET_DIR.mkdir(parents=True, exist_ok=True)
except OSError as exc:
    raise ImproperlyConfigured(
        f"DATASET_DIR {str(DATASET_DIR)!r} cannot be created ({exc.strerror}); "
        "send a writable folder (shared storage when workers run on several machines)"
    ) from None
if not os.access(DATASET_DIR, os.W_OK):
    raise ImproperlyConfigured(f"DATASET_DIR {str(DATASET_DIR)!r} is not writable by this user")
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440, minimum=1024)

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Strict JSON; an unbounded ratio (inf) is "Infinity", NaN is null (never a 500).
    "DEFAULT_RENDERER_CLASSES": [
        "backtestlab.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON nested too deep or holding a NUL character is a 400 naming the field (not a 500).
    "DEFAULT_PARSER_CLASSES": [
        "backtestlab.parsers.CheckedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "backtestlab.api.CappedPagination",
    "EXCEPTION_HANDLER": "backtestlab.api.exception_handler",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "BacktestLab API",
    "DESCRIPTION": "Launch and inspect strategy optimization jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the vendored sidecar package: the machines have no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "backtestlab.schema.add_error_responses",  # the one error shape on every operation
        "backtestlab.schema.strict_request_bodies",  # bodies take only their declared fields
        "backtestlab.schema.text_without_nul",  # all text sent: a pattern without NUL
    ],
    # Runs' and jobs' "status" are different choice sets used by several serializers.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "apps.optimization.models.OptimizationRun.Status",
        "JobStatusEnum": "apps.optimization.models.JobStatus",
        # a best table's rank and a walk-forward's pick: the same two rules
        "RankingEnum": "backtestlab.engine.evaluation.walk_forward.PICKS",
    },
}

# --- strategies -----------------------------------------------------------------------------
# The team's own strategy modules (dotted paths, comma-separated in the environment), loaded at
# start-up beside the built-ins and every installed package's ``backtestlab.strategies`` entry
# points (docs/strategies.md). A module that fails to import stops the start with its name.
BACKTESTLAB_STRATEGIES = env_list("BACKTESTLAB_STRATEGIES", [])

# --- optimization limits ----------------------------------------------------------------------
BACKTESTLAB = {
    "MAX_COMBINATIONS": env_int("BACKTESTLAB_MAX_COMBINATIONS", 200_000, minimum=1),
    "CHUNK_SIZE": env_int("BACKTESTLAB_CHUNK_SIZE", 250, minimum=1),
    # Each worker writes a heartbeat (apps.optimization.models.Worker) this often; one silent
    # for WORKER_LOST_SECONDS is dead and the reaper re-queues its RUNNING chunks.
    "WORKER_HEARTBEAT_SECONDS": env_float("BACKTESTLAB_WORKER_HEARTBEAT_SECONDS", 10.0, minimum=1),
    "WORKER_LOST_SECONDS": env_int("BACKTESTLAB_WORKER_LOST_SECONDS", 30, minimum=3),
    # A RUNNING chunk claimed longer ago than this is presumed lost (killed by the hard time
    # limit, or a worker without heartbeats) and re-queued. Must exceed CELERY_TASK_TIME_LIMIT.
    "STALE_CHUNK_SECONDS": env_int("BACKTESTLAB_STALE_CHUNK_SECONDS", 900, minimum=5),
    # PENDING chunks enqueued longer ago than this are enqueued again when the broker holds
    # fewer chunk messages than there are such chunks (messages lost with the broker). Must
    # exceed the longest retry backoff (10 s), during which a worker holds the message.
    "REQUEUE_PENDING_SECONDS": env_int("BACKTESTLAB_REQUEUE_PENDING_SECONDS", 15, minimum=5),
    "REAPER_INTERVAL_SECONDS": env_float("BACKTESTLAB_REAPER_INTERVAL_SECONDS", 10.0, minimum=1),
    # Attempts of one chunk (errors, killed workers, time limits) before it and its job fail.
    "CHUNK_MAX_ATTEMPTS": env_int("BACKTESTLAB_CHUNK_MAX_ATTEMPTS", 5, minimum=1),
    # Share of runs that may fail before a job ends FAILED instead of SUCCEEDED.
    "FAILURE_TOLERANCE": env_float("BACKTESTLAB_FAILURE_TOLERANCE", 0.0, minimum=0),
    # Per user, on every surface: jobs created per minute (429 beyond) and jobs pending or
    # running at once (429 beyond). Staff are not exempt: a runaway script is a runaway script.
    "JOBS_PER_MINUTE": env_int("BACKTESTLAB_JOBS_PER_MINUTE", 30, minimum=1),
    "MAX_ACTIVE_JOBS_PER_USER": env_int("BACKTESTLAB_MAX_ACTIVE_JOBS_PER_USER", 5, minimum=1),
    # Largest data file the Datasets page and POST /api/datasets/ take (413 beyond).
    "MAX_UPLOAD_MB": env_int("BACKTESTLAB_MAX_UPLOAD_MB", 200, minimum=1),
}

# --- Celery -----------------------------------------------------------------------------------
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
_broker_scheme = urlparse(CELERY_BROKER_URL).scheme
if _broker_scheme not in {"filesystem", "redis", "rediss", "amqp", "pyamqp", "memory"}:
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL has an unsupported scheme {_broker_scheme!r}; "
        "send redis://127.0.0.1:6379/0 or leave it unset for the embedded filesystem broker"
    )
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 600, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 660, minimum=1)
if BACKTESTLAB["STALE_CHUNK_SECONDS"] <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"BACKTESTLAB_STALE_CHUNK_SECONDS ({BACKTESTLAB['STALE_CHUNK_SECONDS']}) must exceed "
        f"CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT}): a chunk still computing would be "
        "given to a second worker; raise the first or lower the second"
    )
if BACKTESTLAB["WORKER_LOST_SECONDS"] < 2 * BACKTESTLAB["WORKER_HEARTBEAT_SECONDS"]:
    raise ImproperlyConfigured(
        f"BACKTESTLAB_WORKER_LOST_SECONDS ({BACKTESTLAB['WORKER_LOST_SECONDS']}) must be at "
        f"least twice BACKTESTLAB_WORKER_HEARTBEAT_SECONDS "
        f"({BACKTESTLAB['WORKER_HEARTBEAT_SECONDS']}): one late heartbeat must not kill a worker"
    )
if _broker_scheme == "filesystem":
    for _folder in ("queue", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # The default 1 s poll made 500 tasks take minutes; 0.1 s keeps the embedded lab brisk.
        "polling_interval": 0.1,
    }
else:
    # Must exceed the hard time limit, or Redis redelivers a task that is still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 3}
# Workers consume all three (apps.optimization.queue): new chunks, chunks given back, and
# beat's housekeeping, so neither a recovered chunk nor the reaper waits behind a backlog.
CELERY_TASK_QUEUES = (Queue("celery"), Queue("recovered"), Queue("housekeeping"))
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "apps.optimization.tasks.reap": {"queue": "housekeeping"},
    "apps.optimization.tasks.fire_template": {"queue": "housekeeping"},
    "apps.strategies.tasks.paper_step": {"queue": "housekeeping"},
}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "reap-stale-chunks": {
        "task": "apps.optimization.tasks.reap",
        "schedule": BACKTESTLAB["REAPER_INTERVAL_SECONDS"],
    },
    # Paper trading: hourly is enough (the synthetic universe gains a day a day); a step with
    # nothing new is a no-op. Scheduled sweeps are PeriodicTask rows (JobTemplate admin).
    "paper-trading-step": {"task": "apps.strategies.tasks.paper_step", "schedule": 3600},
}

# --- security (production = DEBUG off) --------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No inline or foreign scripts (page scripts live in static/js); inline styles are used for bars.
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
