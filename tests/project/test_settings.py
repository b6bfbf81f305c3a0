"""Settings come from environment variables, fail loudly, and pass the deploy checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL"}}
    base.update({k: str(v) for k, v in env.items()})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True
    )


PRODUCTION = {
    "SECRET_KEY": "p" * 30 + "Q9#x" * 10,
    "ALLOWED_HOSTS": "lab.example.com",
    "DEBUG": "0",
    "SECURE_SSL_REDIRECT": "1",
    "SESSION_COOKIE_SECURE": "1",
    "CSRF_COOKIE_SECURE": "1",
}


def test_production_settings_pass_the_deploy_checks():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_missing_secret_key_is_named_when_debug_is_off():
    result = manage("check", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("DEBUG", "maybe", "DEBUG must be one of"),
        ("BACKTESTLAB_CHUNK_SIZE", "ten", "BACKTESTLAB_CHUNK_SIZE must be an integer"),
        ("BACKTESTLAB_CHUNK_SIZE", "0", "BACKTESTLAB_CHUNK_SIZE must be >= 1"),
        ("BACKTESTLAB_FAILURE_TOLERANCE", "nan", "must be a finite number"),
        ("DATABASE_URL", "nonsense://x", "DATABASE_URL"),
        ("CELERY_BROKER_URL", "kafka://x", "CELERY_BROKER_URL has an unsupported scheme"),
        ("DATASET_DIR", "/proc/nonexistent/datasets", "DATASET_DIR '/proc/nonexistent/datasets'"),
    ],
)
def test_a_bad_variable_is_named_at_start(name, value, message):
    env = {**PRODUCTION, name: value}
    result = manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_the_embedded_default_is_sqlite_in_wal_mode_and_the_filesystem_broker(tmp_path):
    code = (
        "import django; django.setup();"
        "from django.conf import settings; from django.db import connection;"
        "print(settings.DATABASES['default']['ENGINE']);"
        "print(settings.CELERY_BROKER_URL);"
        "c = connection.cursor(); c.execute('PRAGMA journal_mode'); print(c.fetchone()[0])"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update(
        DEBUG="1", BACKTESTLAB_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="backtestlab.settings"
    )
    (tmp_path).mkdir(exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["django.db.backends.sqlite3", "filesystem://", "wal"]


def test_the_model_stores_every_engine_metric_as_a_column():
    from apps.optimization.models import OptimizationRun
    from backtestlab.engine.metrics import METRIC_NAMES

    columns = {f.name for f in OptimizationRun._meta.get_fields()}
    assert set(METRIC_NAMES) <= columns
