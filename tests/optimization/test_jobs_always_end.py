"""Every job ends: an error outside the per-run isolation fails the job at once with a message
an operator understands (deterministic), or is retried a bounded number of times (transient);
a worker's liveness is its heartbeat; a bad reaper setting stops the start."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
from billiard.exceptions import TimeLimitExceeded
from django.db import OperationalError

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.market.storage import dataset_path
from apps.optimization import tasks
from apps.optimization.gateway import context_cache_clear
from apps.optimization.models import (
    JobChunk,
    JobCompanion,
    JobStatus,
    OptimizationJob,
    OptimizationRun,
    Worker,
)
from apps.optimization.services import job_kinds, sweeps
from apps.optimization.services.execution import (
    chunk_claim,
    chunk_commit,
    chunk_execute,
    chunk_work,
    job_finalize,
    worker_beat,
    worker_gone,
)
from apps.optimization.tasks import run_chunk
from tests.factories import make_job

pytestmark = pytest.mark.django_db

CARRY_GRID = {"strategy_mode": ["simple"], "min_funding_rate": [0.0002, 0.0003]}


@pytest.fixture
def universe(settings, tmp_path):
    settings.DATASET_DIR = tmp_path / "datasets"
    synthetic_universe_create(symbols=("BTC",), days=30, timeframes=("1h",))
    context_cache_clear()
    yield
    context_cache_clear()


@pytest.fixture
def candles(universe) -> Dataset:
    return Dataset.objects.get(kind="candles", symbol="BTC")


def statuses(job) -> list[str]:
    return list(JobChunk.objects.filter(job=job).order_by("index").values_list("status", flat=True))


def test_a_carry_job_whose_funding_is_gone_fails_at_once_naming_it(alice, candles, small_chunks):
    """The issue's reproduction: the funding companion deleted (here: a job from before
    companions were pinned, whose symbol's funding series was then deleted)."""
    job = make_job(alice, [candles], grid=CARRY_GRID, strategy="funding_carry")
    JobCompanion.objects.filter(job=job).delete()
    Dataset.objects.filter(kind="funding", symbol="BTC").delete()

    chunk = JobChunk.objects.get(job=job)
    assert chunk_execute(chunk_id=chunk.id, worker="w1") == "failed"

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.finished_at is not None
    assert job.error == (
        "chunk 1 of 1 (BTC 1h, items 0-1) failed: LookupError: the funding series of BTC this "
        "job reads is gone (deleted after the job was created); import BTC funding again and "
        "re-run the job"
    )
    chunk.refresh_from_db()
    assert chunk.status == JobChunk.Status.FAILED and chunk.error.startswith("LookupError: ")
    assert OptimizationRun.objects.filter(job=job).count() == 0  # not 2 failed runs: no data


def test_a_chunk_whose_data_file_vanished_fails_its_job_with_the_reason(
    alice, candles, small_chunks
):
    job = make_job(alice, [candles])  # 12 runs in chunks of 5
    dataset_path(candles.file).unlink()

    first, second, third = JobChunk.objects.filter(job=job).order_by("index")
    assert chunk_execute(chunk_id=second.id, worker="w1") == "failed"

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("chunk 2 of 3 (BTC 1h, items 5-9) failed: ")
    assert candles.file in job.error  # the missing file is named
    assert statuses(job) == ["cancelled", "failed", "cancelled"]
    assert [chunk_execute(chunk_id=c.id, worker="w2") for c in (first, third)] == ["skipped"] * 2


def test_a_chunk_computing_when_its_job_failed_stores_nothing(alice, candles, small_chunks):
    job = make_job(alice, [candles])
    first, second, _ = JobChunk.objects.filter(job=job).order_by("index")
    claim = chunk_claim(chunk_id=first.id, worker="w1")
    work = chunk_work(claim=claim)
    dataset_path(candles.file).unlink()
    context_cache_clear()
    assert chunk_execute(chunk_id=second.id, worker="w2") == "failed"

    assert chunk_commit(claim=claim, work=work) is None
    assert OptimizationRun.objects.filter(job=job).count() == 0
    job.refresh_from_db()
    assert (job.completed_runs, job.failed_runs, job.status) == (0, 0, JobStatus.FAILED)


def test_transient_errors_are_retried_up_to_the_cap_then_the_job_fails(
    alice, candles, monkeypatch, settings
):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "CHUNK_MAX_ATTEMPTS": 3}
    job = make_job(alice, [candles])
    chunk = job.chunks.get()
    calls = []

    def database_away(*args, **kwargs):
        calls.append(1)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(sweeps, "chunk_runs", database_away)

    run_chunk.apply(args=[chunk.id]).get()  # eager: the retries run at once

    assert len(calls) == 3  # three attempts, no fourth
    chunk.refresh_from_db()
    assert chunk.status == JobChunk.Status.FAILED and chunk.attempts == 4  # the 4th claim gave up
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == (
        "chunk 1 of 1 (BTC 1h, items 0-11) failed: gave up after 3 attempts; last: "
        "OperationalError: server closed the connection unexpectedly"
    )


def test_a_transient_error_that_goes_away_loses_nothing(alice, candles, monkeypatch):
    job = make_job(alice, [candles])
    chunk = job.chunks.get()
    original = sweeps.chunk_runs
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("terminating connection due to administrator command")
        return original(*args, **kwargs)

    monkeypatch.setattr(sweeps, "chunk_runs", flaky)
    assert run_chunk.apply(args=[chunk.id]).get() == "done"
    chunk.refresh_from_db()
    assert (chunk.status, chunk.attempts) == (JobChunk.Status.DONE, 3)
    assert chunk.error == "OperationalError: terminating connection due to administrator command"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.completed_runs == 12


def test_the_hard_time_limit_fails_the_chunk_and_its_job(alice, candles, small_chunks):
    job = make_job(alice, [candles])
    first = JobChunk.objects.filter(job=job).order_by("index").first()
    chunk_claim(chunk_id=first.id, worker="w1")

    # what the worker's main process runs when it kills the chunk's process
    tasks.chunk_killed_by_time_limit(
        sender=run_chunk, exception=TimeLimitExceeded(660), args=[first.id]
    )

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == (
        "chunk 1 of 3 (BTC 1h, items 0-4) failed: killed by the hard time limit (660 s, "
        "CELERY_TASK_TIME_LIMIT); lower BACKTESTLAB_CHUNK_SIZE or raise the limit"
    )
    assert statuses(job) == ["failed", "cancelled", "cancelled"]
    # other failures of the task are not the time limit's
    tasks.chunk_killed_by_time_limit(sender=run_chunk, exception=ValueError("x"), args=[first.id])
    assert OptimizationJob.objects.get(id=job.id).error == job.error


def test_a_soft_time_limit_names_the_setting_to_change(alice, candles, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    job = make_job(alice, [candles])

    def too_slow(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(sweeps, "chunk_runs", too_slow)
    assert chunk_execute(chunk_id=job.chunks.get().id, worker="w1") == "failed"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "SoftTimeLimitExceeded" in job.error
    assert "lower BACKTESTLAB_CHUNK_SIZE or raise the limit" in job.error


def test_a_finish_that_raises_still_ends_the_job(alice, candles, monkeypatch):
    job = make_job(alice, [candles])

    def broken(job):
        raise KeyError("objective")

    kind = dataclasses.replace(job_kinds.job_kind(job), finish=broken)
    monkeypatch.setitem(job_kinds.JOB_KINDS, job.kind, kind)
    chunk = job.chunks.get()
    claim = chunk_claim(chunk_id=chunk.id, worker="w1")
    assert chunk_commit(claim=claim, work=chunk_work(claim=claim)) == 0
    assert job_finalize(job_id=job.id) is True
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "the job's outcome failed: KeyError: 'objective'"
    assert OptimizationRun.objects.filter(job=job).count() == 12  # the runs are kept


def test_a_heartbeat_creates_then_refreshes_the_worker_row_and_a_clean_stop_removes_it():
    worker_beat(name="w1@host", host="host", pid=41, concurrency=2, pids=[52, 51])
    first = Worker.objects.get(name="w1@host")
    assert (first.host, first.pid, first.concurrency, first.pids) == ("host", 41, 2, [51, 52])
    assert first.started_at == first.last_seen
    worker_beat(name="w1@host", host="host", pid=42, concurrency=2, pids=[53, 51])
    again = Worker.objects.get(name="w1@host")
    assert again.started_at == first.started_at and again.last_seen > first.last_seen
    assert (again.pid, again.pids) == (42, [51, 53])
    worker_gone(name="w1@host")
    assert not Worker.objects.exists()


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"BACKTESTLAB_STALE_CHUNK_SECONDS": "600"},
            "BACKTESTLAB_STALE_CHUNK_SECONDS (600) must exceed CELERY_TASK_TIME_LIMIT (660)",
        ),
        (
            {"BACKTESTLAB_STALE_CHUNK_SECONDS": "700", "CELERY_TASK_TIME_LIMIT": "700"},
            "BACKTESTLAB_STALE_CHUNK_SECONDS (700) must exceed CELERY_TASK_TIME_LIMIT (700)",
        ),
        (
            {"BACKTESTLAB_WORKER_LOST_SECONDS": "15"},
            "BACKTESTLAB_WORKER_LOST_SECONDS (15) must be at least twice",
        ),
    ],
)
def test_reaper_settings_that_would_steal_running_chunks_stop_the_start(env, message):
    environ = {**os.environ, "DEBUG": "1", **env}
    environ.pop("DJANGO_SETTINGS_MODULE", None)
    out = subprocess.run(
        [sys.executable, "-c", "import backtestlab.settings"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "ImproperlyConfigured" in out.stderr and message in out.stderr
    ok = subprocess.run(
        [sys.executable, "-c", "import backtestlab.settings"],
        env={**environ, "BACKTESTLAB_STALE_CHUNK_SECONDS": "900", "CELERY_TASK_TIME_LIMIT": "660",
             "BACKTESTLAB_WORKER_LOST_SECONDS": "30"},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
