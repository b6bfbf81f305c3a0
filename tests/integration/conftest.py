"""Integration tests: real PostgreSQL, Redis and celery worker processes.

Everything in this folder is marked ``integration``. Locally the tests skip when PostgreSQL or
Redis is missing; under ``CI=true`` they fail instead, so CI cannot pass without running them.
Tests use ``transactional_db``: the worker processes only see committed rows.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from django.conf import settings as django_settings
from django.db.models import Count

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import FINISHED_STATUSES, JobChunk, OptimizationJob
from apps.optimization.processes import BeatProcess, WorkerProcess
from tests.env import SESSION_DIR

HERE = Path(__file__).resolve().parent
# The browser tests' screenshots go with the session's folder (tests/env.py) unless
# BACKTESTLAB_SCREENSHOTS names a folder to keep them in (test-output/ is gitignored).
SCREENSHOTS = Path(os.environ.get("BACKTESTLAB_SCREENSHOTS") or SESSION_DIR / "screenshots")

# Debian's chromium, driven by playwright without a browser download. Without the
# background-networking flags chromium keeps dialling out, and this machine refuses that.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The 2,000-run sma_cross grid: 10 fast × 10 slow × 4 stops × 5 reward/risk ratios, every
# combination keeping the strategy's constraint fast < slow (none is skipped).
GRID_2000 = {
    "fast": {"start": 5, "stop": 50, "step": 5},
    "slow": {"start": 60, "stop": 240, "step": 20},
    "sl_pct": [1, 2, 3, 4],
    "rr": [1.5, 2, 2.5, 3, 3.5],
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # tryfirst: the mark must be there before `-m` deselects anything.
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.integration)


def _unavailable(message: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: integration tests must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def integration_services():
    """PostgreSQL as the configured database and a reachable Redis broker, or skip/fail."""
    engine = django_settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        _unavailable(
            f"integration tests need DATABASE_URL=postgres://... (configured engine: {engine})"
        )
    import psycopg

    db = django_settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            dbname=db["NAME"],
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        _unavailable(f"PostgreSQL at {db['HOST']}:{db['PORT']} is not reachable: {exc}")
    broker = django_settings.CELERY_BROKER_URL
    if urlparse(broker).scheme not in {"redis", "rediss"}:
        _unavailable(f"integration tests need CELERY_BROKER_URL=redis://... (got {broker!r})")
    import redis

    try:
        redis.Redis.from_url(broker, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {broker} is not reachable: {exc}")


@pytest.fixture(autouse=True)
def clean_broker():
    """An empty Redis database for each test: no message of an earlier test is delivered."""
    import redis

    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    client.flushdb()
    yield
    client.flushdb()
    client.close()


@pytest.fixture
def worker_env(transactional_db):
    """Environment for worker processes: the *test* database and the same broker."""
    from django.db import connection

    url = urlparse(os.environ.get("DATABASE_URL", ""))
    test_db_url = urlunparse(url._replace(path="/" + connection.settings_dict["NAME"]))
    return {
        "DATABASE_URL": test_db_url,
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "DJANGO_SETTINGS_MODULE": "backtestlab.settings",
    }


@pytest.fixture
def start_worker(worker_env, tmp_path):
    """Start a real worker process (ready when this returns); every one is stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(name: str = "w1", *, concurrency: int = 2, env: dict | None = None, **options):
        worker = WorkerProcess(
            name,
            concurrency=concurrency,
            env={**worker_env, **(env or {})},
            log_dir=tmp_path / "workers",
            **options,
        )
        started.append(worker)
        return worker.start()

    start.workers = started
    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def start_beat(worker_env, tmp_path):
    """Start the real ``celery beat`` (the reaper every REAPER_INTERVAL_SECONDS, the default
    settings unless ``env`` says otherwise); stopped at teardown."""
    started: list[BeatProcess] = []

    def start(*, env: dict | None = None) -> BeatProcess:
        beat = BeatProcess("beat", env={**worker_env, **(env or {})}, log_dir=tmp_path / "beat")
        started.append(beat)
        return beat.start()

    yield start
    for beat in started:
        beat.stop()


@pytest.fixture
def hourly_datasets(transactional_db):
    """BTC and ETH hourly candles, one synthetic year, with their Parquet files in DATASET_DIR."""
    synthetic_universe_create(days=365, timeframes=("1h",))
    return list(Dataset.objects.filter(kind=Dataset.Kind.CANDLES, timeframe="1h").order_by("id"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def job_state(job_id: int) -> str:
    job = OptimizationJob.objects.get(id=job_id)
    chunks = dict(
        JobChunk.objects.filter(job_id=job_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return (
        f"job {job.id}: status={job.status} completed={job.completed_runs} "
        f"failed={job.failed_runs} total={job.total_runs} "
        f"chunks_remaining={job.chunks_remaining}/{job.chunks_total} chunks={chunks} "
        f"error={job.error!r}"
    )


@pytest.fixture
def failure_report(start_worker):
    """The job's state and the tail of every worker's log, for assertion messages."""

    def report(job_id: int) -> str:
        tails = "\n".join(
            f"--- worker {w.name} ({w.log_path}) ---\n{w.log_tail()}" for w in start_worker.workers
        )
        return f"{job_state(job_id)}\n{tails}"

    return report


@pytest.fixture
def wait_for_job(failure_report):
    """Poll until a job is finished or fail with its state and the workers' logs.

    ``reap`` (a callable) runs every two seconds meanwhile, as celery beat would.
    """

    def wait(job_id: int, *, timeout: float = 120.0, reap=None) -> OptimizationJob:
        deadline = time.monotonic() + timeout
        next_reap = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            job = OptimizationJob.objects.get(id=job_id)
            if job.status in FINISHED_STATUSES:
                return job
            if reap is not None and time.monotonic() >= next_reap:
                reap()
                next_reap = time.monotonic() + 2.0
            time.sleep(0.2)
        pytest.fail(
            f"job did not finish within {timeout:.0f} s\n{failure_report(job_id)}", pytrace=False
        )

    return wait


@pytest.fixture
def page(monkeypatch):
    """A headless chromium page (30 s default timeout: a first call may build a universe)."""
    from playwright.sync_api import expect, sync_playwright

    if not shutil.which(CHROMIUM):
        message = f"the browser test needs Debian's chromium at {CHROMIUM} (make chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    # Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls
    # there: tests do their ORM work in fixtures set up before this one.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        expect.set_options(timeout=30_000)  # expect() has its own default (5 s)
        yield context.new_page()
        context.close()
        browser.close()


def log_in(page, live_server, username: str, password: str) -> None:
    """Log in through the login page, as a person would; lands on the job list."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-btn")
    page.wait_for_url(f"{live_server.url}/lab/")
