"""Every job ends: an error outside the per-run isolation fails the job at once with a message
an operator understands (deterministic), or is retried a bounded number of times (transient);
a worker's liveness is its heartbeat; a bad reaper setting stops the start."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid

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
    ChunkClaim,
    chunk_claim,
    chunk_commit,
    chunk_execute,
    chunk_give_up,
    chunk_give_up_held,
    chunk_release,
    chunk_work,
    job_fail,
    job_finalize,
    worker_beat,
    worker_gone,
)
from apps.optimization.signals import job_finished
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


# --- each step at its edges (the chunks mutation target) --------------------------------------


def test_a_claim_cannot_be_altered_once_made(alice, candles):
    job = make_job(alice, [candles])
    claim = chunk_claim(chunk_id=job.chunks.get().id, worker="w1")
    assert isinstance(claim, ChunkClaim)
    with pytest.raises(dataclasses.FrozenInstanceError):
        claim.token = None


def test_giving_up_a_chunk_needs_its_claim_when_a_token_is_given(alice, candles):
    job = make_job(alice, [candles])
    chunk = job.chunks.get()
    claim = chunk_claim(chunk_id=chunk.id, worker="w1")
    assert chunk_give_up(chunk=claim.chunk, token=uuid.uuid4(), error="late") is False
    chunk.refresh_from_db()
    assert chunk.status == JobChunk.Status.RUNNING and chunk.error == ""
    assert OptimizationJob.objects.get(id=job.id).status == JobStatus.RUNNING
    assert chunk_give_up(chunk=claim.chunk, token=claim.token, error="boom") is True
    chunk.refresh_from_db()
    assert (chunk.status, chunk.error) == (JobChunk.Status.FAILED, "boom")
    failed = OptimizationJob.objects.get(id=job.id)
    assert (failed.status, failed.error) == (
        JobStatus.FAILED, "chunk 1 of 1 (BTC 1h, items 0-11) failed: boom"
    )  # fmt: skip
    # settled already: a second give-up (with or without a token) changes nothing
    assert chunk_give_up(chunk=claim.chunk, error="again") is False
    assert chunk_give_up_held(chunk_id=chunk.id, error="again") is False
    chunk.refresh_from_db()
    assert chunk.error == "boom"


def test_a_chunk_held_by_anyone_can_be_given_up_without_its_token(alice, candles):
    job = make_job(alice, [candles])
    chunk = job.chunks.get()
    chunk_claim(chunk_id=chunk.id, worker="w1")
    assert chunk_give_up_held(chunk_id=chunk.id, error="killed by the hard time limit") is True
    chunk.refresh_from_db()
    assert (chunk.status, chunk.error) == (JobChunk.Status.FAILED, "killed by the hard time limit")
    assert OptimizationJob.objects.get(id=job.id).status == JobStatus.FAILED


def test_a_job_fails_and_is_announced_once(alice, candles, caplog):
    job = make_job(alice, [candles])
    heard = []

    def listener(sender, job_id, **kwargs):
        heard.append(job_id)

    def broken(sender, job_id, **kwargs):
        raise RuntimeError("receiver down")

    job_finished.connect(listener)
    job_finished.connect(broken)
    try:
        assert job_fail(job_id=job.id, error="first") is True
        assert job_fail(job_id=job.id, error="second") is False
    finally:
        job_finished.disconnect(listener)
        job_finished.disconnect(broken)
    assert heard == [job.id]
    assert OptimizationJob.objects.get(id=job.id).error == "first"
    ours = [
        r.getMessage() for r in caplog.records
        if r.name == "apps.optimization.services.execution" and "receiver" in r.getMessage()
    ]  # fmt: skip
    assert len(ours) == 1  # the failing receiver only, not the one that answered
    assert ours[0].startswith("job_finished receiver <function")
    assert ours[0].endswith(f"broken at {hex(id(broken))}> failed on job {job.id}: "
                            "RuntimeError('receiver down')")  # fmt: skip


def test_a_transient_error_while_finalizing_leaves_the_job_to_the_reaper(
    alice, candles, monkeypatch
):
    job = make_job(alice, [candles])

    def database_away(job):
        raise OperationalError("server closed the connection unexpectedly")

    kind = dataclasses.replace(job_kinds.job_kind(job), finish=database_away)
    monkeypatch.setitem(job_kinds.JOB_KINDS, job.kind, kind)
    claim = chunk_claim(chunk_id=job.chunks.get().id, worker="w1")
    assert chunk_commit(claim=claim, work=chunk_work(claim=claim)) == 0
    with pytest.raises(OperationalError):
        job_finalize(job_id=job.id)
    still = OptimizationJob.objects.get(id=job.id)
    assert (still.status, still.error) == (JobStatus.RUNNING, "")


def test_a_released_chunk_keeps_its_last_error_unless_given_a_new_one(alice, candles):
    job = make_job(alice, [candles])
    chunk = job.chunks.get()
    chunk_claim(chunk_id=chunk.id, worker="w1")
    assert chunk_release(chunk_id=chunk.id, worker="w1", error="OperationalError: gone") is True
    chunk.refresh_from_db()
    assert (chunk.status, chunk.error, chunk.worker) == ("pending", "OperationalError: gone", "")
    chunk_claim(chunk_id=chunk.id, worker="w2")
    assert chunk_release(chunk_id=chunk.id, worker="w1") is False  # not w1's any more
    assert chunk_release(chunk_id=chunk.id, worker="w2") is True
    chunk.refresh_from_db()
    assert (chunk.status, chunk.error) == ("pending", "OperationalError: gone")


def test_a_heartbeat_cuts_long_names_to_their_columns_and_reads_no_pids_as_none():
    name, host = "w" * 250 + "@h", "h" * 250
    worker_beat(name=name, host=host, pid=7, concurrency=1, pids=None)
    row = Worker.objects.get()
    assert (row.name, row.host, row.pids) == (name[:200], host[:200], [])
    worker_beat(name=name, host=host, pid=7, concurrency=1, pids=[3])
    assert Worker.objects.get().pids == [3] and Worker.objects.count() == 1
