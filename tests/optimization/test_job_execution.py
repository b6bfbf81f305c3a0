"""A job's way through chunks, counters and finalization, against the database."""

import math

import numpy as np
import pytest
from django.db.models import Count

from apps.market.selectors import dataset_market_data
from apps.optimization.models import JobChunk, JobStatus, OptimizationRun
from apps.optimization.selectors.jobs import job_best_runs
from apps.optimization.services import sweeps
from apps.optimization.services.execution import (
    chunk_execute,
    chunks_reap,
    chunks_recover_worker,
)
from apps.optimization.services.jobs import job_cancel, job_copy, job_start
from backtestlab.engine import sweep
from backtestlab.engine.metrics import METRIC_NAMES
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.errors import ApplicationError
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db


def test_it_splits_a_job_into_chunks_over_each_dataset(alice, datasets, small_chunks):
    job = make_job(alice, datasets)
    assert job.total_runs == 12 * 2
    chunks = list(JobChunk.objects.filter(job=job).order_by("index"))
    assert [(c.dataset_id, c.start, c.stop) for c in chunks] == [
        (datasets[0].id, 0, 5), (datasets[0].id, 5, 10), (datasets[0].id, 10, 12),
        (datasets[1].id, 0, 5), (datasets[1].id, 5, 10), (datasets[1].id, 10, 12),
    ]  # fmt: skip
    assert job.chunks_remaining == 6
    assert job.status == JobStatus.PENDING


def test_it_enqueues_chunks_only_after_commit(alice, datasets, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        make_job(alice, datasets)
    assert len(callbacks) == 1


def test_running_every_chunk_twice_gives_the_same_end_state(alice, datasets, small_chunks):
    job = make_job(alice, datasets)
    first = run_all_chunks(job)
    assert first == ["done"] * 6
    snapshot = sorted(OptimizationRun.objects.filter(job=job).values_list("id", "param_hash"))
    second = run_all_chunks(job)
    assert second == ["skipped"] * 6
    assert (
        sorted(OptimizationRun.objects.filter(job=job).values_list("id", "param_hash")) == snapshot
    )
    assert job.status == JobStatus.SUCCEEDED
    assert job.completed_runs == 24 and job.failed_runs == 0 and job.progress_pct == 100.0
    assert job.chunks_remaining == 0
    per_dataset = (
        OptimizationRun.objects.filter(job=job)
        .values("dataset")
        .annotate(n=Count("param_hash", distinct=True))
    )
    assert sorted(r["n"] for r in per_dataset) == [12, 12]


def test_stored_metrics_equal_a_direct_engine_run(alice, datasets):
    job = make_job(alice, datasets[:1])
    run_all_chunks(job)
    run = OptimizationRun.objects.get(job=job, grid_index=7)
    assert run.params == sweep.params_at(job.parameter_grid, 7)
    strategy = get_strategy("sma_cross")
    ctx = strategy.prepare(dataset_market_data(datasets[0]))
    expected = strategy.run_many(ctx, [run.params], Costs(**job.costs))[0]
    for name, value in zip(METRIC_NAMES, expected, strict=True):
        stored = getattr(run, name)
        if math.isfinite(value):
            assert np.isclose(stored, value, rtol=1e-12), name
        else:
            assert stored is None, name


def test_best_parameters_are_the_top_run_by_the_objective(alice, datasets):
    job = make_job(alice, datasets, objective="total_return_pct")
    run_all_chunks(job)
    values = list(
        OptimizationRun.objects.filter(job=job, total_return_pct__isnull=False).values_list(
            "total_return_pct", flat=True
        )
    )
    assert job.best_params["overall"]["value"] == max(values)
    assert job.best_run.total_return_pct == max(values)
    assert len(job.best_params["per_dataset"]) == 2
    top = job_best_runs(job=job, limit=5)
    assert [r.total_return_pct for r in top] == sorted(values, reverse=True)[:5]


def test_a_chunk_is_skipped_when_its_job_was_cancelled(alice, datasets, small_chunks):
    job = make_job(alice, datasets)
    chunk_ids = list(job.chunks.order_by("index").values_list("id", flat=True))
    assert chunk_execute(chunk_id=chunk_ids[0]) == "done"
    job_cancel(job=job)
    assert [chunk_execute(chunk_id=c) for c in chunk_ids[1:]] == ["skipped"] * 5
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert OptimizationRun.objects.filter(job=job).count() == 5


def test_a_chunk_that_lost_its_claim_stores_nothing(alice, datasets, small_chunks, monkeypatch):
    """The reaper re-queued the chunk while its first worker was still computing."""
    job = make_job(alice, datasets[:1])
    chunk = job.chunks.order_by("index").first()
    original = sweeps.chunk_runs

    def slow_build(job_, chunk_):
        runs = original(job_, chunk_)
        JobChunk.objects.filter(id=chunk_.id).update(status=JobChunk.Status.PENDING)  # reaper
        return runs

    monkeypatch.setattr(sweeps, "chunk_runs", slow_build)
    assert chunk_execute(chunk_id=chunk.id) == "lost"
    assert OptimizationRun.objects.filter(job=job).count() == 0
    monkeypatch.setattr(sweeps, "chunk_runs", original)
    assert chunk_execute(chunk_id=chunk.id) == "done"
    assert OptimizationRun.objects.filter(job=job).count() == 5


def test_cancelling_a_finished_job_is_refused(alice, datasets):
    job = make_job(alice, datasets[:1])
    run_all_chunks(job)
    with pytest.raises(ApplicationError) as err:
        job_cancel(job=job)
    assert err.value.status == 409 and "succeeded" in err.value.message


def test_rerun_copies_the_configuration_into_a_new_started_job(alice, datasets):
    job = make_job(alice, datasets[:1])
    run_all_chunks(job)
    copy = job_copy(job=job, user=alice, start=True, rerun=True)
    assert copy.id != job.id and copy.rerun_of_id == job.id
    assert copy.parameter_grid == job.parameter_grid and copy.total_runs == job.total_runs
    assert copy.chunks.count() == job.chunks.count()
    assert OptimizationRun.objects.filter(job=job).count() == 12  # the original keeps its runs


def test_duplicate_is_not_started_until_start(alice, datasets):
    job = make_job(alice, datasets[:1])
    dup = job_copy(job=job, user=alice, start=False)
    assert dup.chunks.count() == 0 and dup.enqueued_at is None
    job_start(job=dup)
    assert dup.chunks.count() == job.chunks.count() == 1
    with pytest.raises(ApplicationError):
        job_start(job=dup)


def test_failing_backtests_are_recorded_and_fail_the_job(alice, datasets, monkeypatch, settings):
    strategy = get_strategy("sma_cross")
    original = type(strategy).run_many

    def run_many(self, ctx, param_list, costs):
        if any(p["fast"] == 10 for p in param_list):
            raise ValueError("fast=10 is cursed")
        return original(self, ctx, param_list, costs)

    monkeypatch.setattr(type(strategy), "run_many", run_many)
    job = make_job(alice, datasets[:1])
    run_all_chunks(job)
    assert job.failed_runs == 4 and job.completed_runs == 8
    failed = OptimizationRun.objects.filter(job=job, status=OptimizationRun.Status.FAILED)
    assert {r.params["fast"] for r in failed} == {10}
    assert all("fast=10 is cursed" in r.error for r in failed)
    assert job.status == JobStatus.FAILED
    assert "4 of 12 runs failed" in job.error


def test_failure_tolerance_lets_a_job_succeed(alice, datasets, monkeypatch, settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "FAILURE_TOLERANCE": 0.5}
    strategy = get_strategy("sma_cross")
    original = type(strategy).run_many

    def run_many(self, ctx, param_list, costs):
        if any(p["fast"] == 10 for p in param_list):
            raise ValueError("cursed")
        return original(self, ctx, param_list, costs)

    monkeypatch.setattr(type(strategy), "run_many", run_many)
    job = make_job(alice, datasets[:1])
    run_all_chunks(job)
    assert job.status == JobStatus.SUCCEEDED and job.failed_runs == 4


def test_the_reaper_requeues_stale_running_chunks(
    alice, datasets, django_capture_on_commit_callbacks, broker
):
    import datetime as dt

    from django.utils import timezone

    job = make_job(alice, datasets[:1])
    chunk = job.chunks.order_by("index").first()
    long_ago = timezone.now() - dt.timedelta(hours=2)
    JobChunk.objects.filter(id=chunk.id).update(
        status=JobChunk.Status.RUNNING, claimed_at=long_ago, worker="dead@host"
    )
    broker.purge()  # the job's own messages
    stats = chunks_reap()
    assert stats["reset"] == 1
    assert chunk.id in broker.take()["recovered"]
    chunk.refresh_from_db()
    assert chunk.status == JobChunk.Status.PENDING and chunk.worker == ""
    assert chunk_execute(chunk_id=chunk.id) == "done"


def test_a_restarted_worker_requeues_the_chunks_it_held(alice, datasets, broker):
    job = make_job(alice, datasets[:1])
    broker.purge()  # the job's own message
    chunk = job.chunks.order_by("index").first()
    JobChunk.objects.filter(id=chunk.id).update(status=JobChunk.Status.RUNNING, worker="w9@host")
    assert chunks_recover_worker(worker="w8@host") == 0
    assert chunks_recover_worker(worker="w9@host") == 1
    assert broker.take() == {"celery": [], "recovered": [chunk.id]}


def test_the_reaper_finalizes_a_job_whose_finisher_died(alice, datasets):
    from apps.optimization.models import OptimizationJob

    job = make_job(alice, datasets[:1])
    run_all_chunks(job)
    OptimizationJob.objects.filter(id=job.id).update(status=JobStatus.RUNNING, best_params=None)
    assert chunks_reap()["finalized"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    top = OptimizationRun.objects.filter(job=job).order_by("-sharpe", "id").first()  # objective
    assert job.best_params["overall"]["params"] == top.params and job.best_run_id == top.id
    assert chunks_reap()["finalized"] == 0


def test_grid_indexes_decode_in_the_strategys_parameter_order(alice, datasets):
    """PostgreSQL's jsonb reorders keys; the grid must be read in the declared order."""
    from apps.optimization.models import OptimizationJob

    job = make_job(alice, datasets[:1])
    shuffled = dict(reversed(list(job.parameter_grid.items())))
    OptimizationJob.objects.filter(id=job.id).update(parameter_grid=shuffled)
    job.refresh_from_db()
    assert list(job.grid) == ["fast", "slow", "sl_pct", "rr"]
    run_all_chunks(job)
    ordered = {"fast": [5, 10, 20], "slow": [30, 60], "sl_pct": [1.0, 2.0], "rr": [2.0]}
    for run in OptimizationRun.objects.filter(job=job):
        assert run.params == sweep.params_at(ordered, run.grid_index)
