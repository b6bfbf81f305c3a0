"""Jobs through real celery worker processes on PostgreSQL and Redis: plain, killed, duplicated."""

from __future__ import annotations

import re
import time

import pytest
from django.db.models import Count, Max

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import JobChunk, JobStatus, OptimizationJob, OptimizationRun
from apps.optimization.queue import chunks_enqueue
from apps.optimization.services.execution import chunks_reap
from apps.optimization.services.jobs import job_create
from backtestlab.engine import sweep
from tests.integration.conftest import GRID_2000

# Workers are other processes: they only see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

TOTAL = 2000
TASK_RESULT = re.compile(r"run_chunk\[[^\]]+\] succeeded in [0-9.e-]+s: '(\w+)'")


def create_job(user, dataset, name):
    job = job_create(
        user=user,
        name=name,
        strategy="sma_cross",
        dataset_ids=[dataset.id],
        parameter_grid=GRID_2000,
    )
    assert job.total_runs == TOTAL
    return job


def assert_complete(job: OptimizationJob, report: str) -> None:
    """Exactly one stored run per grid point, counters and progress consistent."""
    job.refresh_from_db()
    runs = OptimizationRun.objects.filter(job=job)
    assert job.status == JobStatus.SUCCEEDED, report
    assert job.total_runs == TOTAL
    assert job.completed_runs == TOTAL, report
    assert job.failed_runs == 0, report
    assert job.chunks_remaining == 0
    assert job.progress_pct == 100.0
    assert runs.count() == TOTAL
    assert runs.values("param_hash").distinct().count() == TOTAL
    assert runs.values("grid_index").distinct().count() == TOTAL
    duplicates = (
        runs.values("dataset_id", "param_hash").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    assert duplicates == 0
    assert not JobChunk.objects.filter(job=job).exclude(status=JobChunk.Status.DONE).exists()
    # the best run: the highest sharpe (the job's objective) of the runs with at least the
    # job's min_trades trades, ties to the lowest id
    top = (
        runs.filter(sharpe__isnull=False, n_trades__gte=job.min_trades)
        .order_by("-sharpe", "id")
        .first()
    )
    assert job.best_run_id == top.id, job.best_params
    assert job.best_params["overall"]["run_id"] == top.id
    assert job.best_params["overall"]["params"] == top.params
    # jsonb reorders the grid's keys; indexes must still decode in the declared order.
    for grid_index, params in runs.values_list("grid_index", "params")[:: TOTAL // 50]:
        assert params == sweep.params_at(job.grid, grid_index)


@pytest.fixture
def small_chunks(settings):
    """50 runs per chunk: 40 chunks per job, so a job is mid-way for a while."""
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "CHUNK_SIZE": 50}


def test_a_2000_run_job_succeeds_with_every_run_stored_once(
    alice, hourly_datasets, start_worker, wait_for_job, failure_report
):
    start_worker("solo", concurrency=2)
    job = create_job(alice, hourly_datasets[0], "integration: 2,000 runs")

    job = wait_for_job(job.id)

    assert_complete(job, failure_report(job.id))


def test_a_job_survives_its_worker_being_killed_halfway(
    alice, settings, small_chunks, start_worker, wait_for_job, failure_report
):
    # One synthetic quarter of minute candles: ~130,000 bars per backtest, so one worker
    # process needs several seconds for the 2,000 runs and the test can kill it mid-way.
    synthetic_universe_create(symbols=("BTC",), days=90, timeframes=(), with_minutes=True)
    dataset = Dataset.objects.get(kind=Dataset.Kind.CANDLES, timeframe="1m")
    # The test loop plays celery beat (chunks_reap); a pending chunk whose message
    # died with the worker (prefetched, never claimed) is re-queued after 5 s of no progress
    # instead of the production 300 s. The restarted worker's start-up reap uses it too.
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "REQUEUE_PENDING_SECONDS": 5}
    fast_reaper = {"BACKTESTLAB_REQUEUE_PENDING_SECONDS": "5"}

    first = start_worker("crashy", concurrency=1, env=fast_reaper)
    job = create_job(alice, dataset, "integration: killed worker")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = OptimizationJob.objects.values_list("completed_runs", flat=True).get(id=job.id)
        if done >= TOTAL * 0.4:
            break
        time.sleep(0.02)
    first.kill()

    job.refresh_from_db()
    report = failure_report(job.id)
    assert 0 < job.completed_runs < TOTAL, report
    assert job.status == JobStatus.RUNNING, report

    # Same node name: its start-up recovery re-queues the chunk it held when it died.
    start_worker("crashy", concurrency=1, env=fast_reaper)
    job = wait_for_job(job.id, reap=chunks_reap)

    assert_complete(job, failure_report(job.id))


def test_every_chunk_delivered_twice_to_two_workers_is_run_once(
    alice, hourly_datasets, small_chunks, start_worker, wait_for_job, failure_report
):
    job = create_job(alice, hourly_datasets[0], "integration: duplicated messages")
    chunk_ids = list(JobChunk.objects.filter(job=job).values_list("id", flat=True))
    assert len(chunk_ids) == 40
    chunks_enqueue(chunk_ids)  # the second delivery of every chunk

    workers = [start_worker("twin-a", concurrency=2), start_worker("twin-b", concurrency=2)]
    job = wait_for_job(job.id)

    assert_complete(job, failure_report(job.id))
    # Every chunk was claimed once; each duplicate message found it taken and changed nothing.
    assert JobChunk.objects.filter(job=job).aggregate(m=Max("attempts"))["m"] == 1
    results = task_results(workers, expected=2 * len(chunk_ids))
    assert sorted(set(results)) == ["done", "skipped"], failure_report(job.id)
    assert results.count("done") == len(chunk_ids)
    assert results.count("skipped") == len(chunk_ids)


def task_results(workers, *, expected: int, timeout: float = 60.0) -> list[str]:
    """The results of run_chunk tasks as the workers logged them, once all have arrived."""
    deadline = time.monotonic() + timeout
    while True:
        results = [r for w in workers for r in TASK_RESULT.findall(w.log_tail(lines=100_000))]
        if len(results) >= expected or time.monotonic() > deadline:
            return results
        time.sleep(0.2)
