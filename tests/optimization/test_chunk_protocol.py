"""The chunk protocol, step by step: claim, work, commit, finalize, release, reap, recover.

Each step is driven on its own (``chunk_claim`` / ``chunk_work`` / ``chunk_commit`` are the
natural boundaries of ``chunk_execute``), so a cancel, a reaper or a second worker can be put
between any two of them, and the stored state is checked field by field. The broker is the
real embedded one (``broker`` fixture, tests/optimization/conftest.py): what the code put on
each queue is read back from it.
"""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization import queue
from apps.optimization.models import (
    JobChunk,
    JobStatus,
    JobTemplate,
    OptimizationJob,
    OptimizationRun,
    TemplateFiring,
    Worker,
)
from apps.optimization.queue import chunks_enqueue
from apps.optimization.services import sweeps
from apps.optimization.services.execution import (
    chunk_claim,
    chunk_commit,
    chunk_execute,
    chunk_release,
    chunk_work,
    chunks_reap,
    chunks_recover_worker,
    job_finalize,
)
from apps.optimization.services.jobs import job_cancel
from apps.optimization.services.schedules import template_fire
from apps.optimization.services.sweeps import chunk_runs
from apps.strategies.models import ParameterChange
from backtestlab.engine.strategies import get_strategy
from tests.factories import SMALL_GRID, make_job
from tests.strategies.conftest import approve, grant

pytestmark = pytest.mark.django_db

STALE = 900  # settings.BACKTESTLAB["STALE_CHUNK_SECONDS"]
REQUEUE = 15  # settings.BACKTESTLAB["REQUEUE_PENDING_SECONDS"]
LOST = 30  # settings.BACKTESTLAB["WORKER_LOST_SECONDS"]
ATTEMPTS = 5  # settings.BACKTESTLAB["CHUNK_MAX_ATTEMPTS"]
NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def repair_settings(settings):
    settings.BACKTESTLAB = {
        **settings.BACKTESTLAB,
        "STALE_CHUNK_SECONDS": STALE,
        "REQUEUE_PENDING_SECONDS": REQUEUE,
        "WORKER_LOST_SECONDS": LOST,
        "CHUNK_MAX_ATTEMPTS": ATTEMPTS,
        "FAILURE_TOLERANCE": 0.0,
    }


def hourly(*symbols: str) -> list[Dataset]:
    """Hourly candles of 20 synthetic days (smaller than the shared fixture's: these tests run
    once per mutant in ``make mutation``)."""
    synthetic_universe_create(symbols=symbols, days=20, timeframes=("1h",))
    return list(Dataset.objects.filter(kind=Dataset.Kind.CANDLES).order_by("id"))


@pytest.fixture
def btc(db) -> Dataset:
    (btc,) = hourly("BTC")
    return btc


@pytest.fixture
def job(alice, btc, small_chunks):
    """SMALL_GRID (12 runs) on BTC in chunks of 5: grid indexes [0:5) [5:10) [10:12)."""
    return make_job(alice, [btc])


@pytest.fixture
def cursed_fast(monkeypatch):
    """sma_cross backtests raise for the given fast values (each a FAILED run)."""

    def curse(*values):
        strategy = get_strategy("sma_cross")
        original = type(strategy).run_many

        def run_many(self, ctx, param_list, costs):
            if any(p["fast"] in values for p in param_list):
                raise ValueError(f"fast in {values} is cursed")
            return original(self, ctx, param_list, costs)

        monkeypatch.setattr(type(strategy), "run_many", run_many)

    return curse


def chunks_of(job) -> list[JobChunk]:
    return list(JobChunk.objects.filter(job_id=job.id).order_by("index"))


def fresh(job) -> OptimizationJob:
    return OptimizationJob.objects.get(id=job.id)


def counters(job) -> tuple[int, int, int]:
    job = fresh(job)
    return job.completed_runs, job.failed_runs, job.chunks_remaining


def commit_all_without_finalizing(job) -> None:
    """Every chunk committed, none finalizing: the state a finisher that died leaves."""
    for chunk in chunks_of(job):
        claim = chunk_claim(chunk_id=chunk.id, worker="w1")
        chunk_commit(claim=claim, work=chunk_work(claim=claim))


def running_chunk(chunk: JobChunk, *, worker: str, claimed_at: dt.datetime) -> JobChunk:
    JobChunk.objects.filter(id=chunk.id).update(
        status=JobChunk.Status.RUNNING,
        worker=worker,
        claimed_at=claimed_at,
        claim_token=uuid.uuid4(),
        enqueued_at=claimed_at,
    )
    return JobChunk.objects.get(id=chunk.id)


# --- claim ----------------------------------------------------------------------------------


def test_a_claim_marks_the_chunk_running_for_this_worker_and_starts_the_job(job):
    chunk = chunks_of(job)[0]
    before = timezone.now()
    claim = chunk_claim(chunk_id=chunk.id, worker="w1@host")
    after = timezone.now()

    stored = JobChunk.objects.get(id=chunk.id)
    assert claim.chunk.id == chunk.id and claim.chunk.job.id == job.id
    assert stored.status == JobChunk.Status.RUNNING
    assert stored.claim_token == claim.token and stored.worker == "w1@host"
    assert stored.attempts == 1 and before <= stored.claimed_at <= after
    assert stored.finished_at is None
    started = fresh(job)
    assert started.status == JobStatus.RUNNING
    assert started.started_at == started.heartbeat_at == stored.claimed_at
    # the other chunks are untouched
    assert [c.status for c in chunks_of(job)[1:]] == ["pending", "pending"]
    assert [c.attempts for c in chunks_of(job)[1:]] == [0, 0]


def test_a_second_claim_keeps_the_start_of_a_job_already_running(job):
    first, second, _ = chunks_of(job)
    chunk_claim(chunk_id=first.id)
    started_at = fresh(job).started_at
    claim = chunk_claim(chunk_id=second.id)
    assert fresh(job).started_at == started_at
    assert JobChunk.objects.get(id=second.id).claimed_at > started_at
    assert claim.token != JobChunk.objects.get(id=first.id).claim_token


def test_a_long_worker_name_is_cut_to_the_column(job):
    chunk = chunks_of(job)[0]
    chunk_claim(chunk_id=chunk.id, worker="w" * 250)
    assert JobChunk.objects.get(id=chunk.id).worker == "w" * 200


@pytest.mark.parametrize(
    "chunk_status", [JobChunk.Status.RUNNING, JobChunk.Status.DONE, JobChunk.Status.CANCELLED]
)
def test_only_a_pending_chunk_can_be_claimed(job, chunk_status):
    chunk = chunks_of(job)[0]
    JobChunk.objects.filter(id=chunk.id).update(status=chunk_status, worker="other")
    assert chunk_claim(chunk_id=chunk.id, worker="w1") is None
    assert chunk_execute(chunk_id=chunk.id, worker="w1") == "skipped"
    stored = JobChunk.objects.get(id=chunk.id)
    assert (stored.status, stored.worker, stored.attempts) == (chunk_status, "other", 0)
    assert fresh(job).status == JobStatus.PENDING


@pytest.mark.parametrize("job_status", [JobStatus.CANCELLED, JobStatus.SUCCEEDED, JobStatus.FAILED])
def test_a_pending_chunk_of_a_finished_job_cannot_be_claimed(job, job_status):
    chunk = chunks_of(job)[0]
    OptimizationJob.objects.filter(id=job.id).update(status=job_status)
    assert chunk_claim(chunk_id=chunk.id, worker="w1") is None
    stored = JobChunk.objects.get(id=chunk.id)
    assert (stored.status, stored.attempts, stored.claim_token) == ("pending", 0, None)
    assert fresh(job).status == job_status and fresh(job).started_at is None


def test_an_unknown_chunk_is_skipped(job):
    assert chunk_execute(chunk_id=10**9) == "skipped"


# --- work and commit ---------------------------------------------------------------------------


def test_a_commit_stores_the_runs_marks_the_chunk_done_and_advances_the_counters(job, cursed_fast):
    cursed_fast(10)  # grid indexes 4..7 have fast=10: the first chunk [0:5) has one of them
    first = chunks_of(job)[0]
    claim = chunk_claim(chunk_id=first.id, worker="w1")
    work = chunk_work(claim=claim)
    assert (work.units, work.failed, work.result) == (5, 1, None)
    assert OptimizationRun.objects.count() == 0  # computing stores nothing
    before = timezone.now()

    assert chunk_commit(claim=claim, work=work) == 2

    stored = JobChunk.objects.get(id=first.id)
    assert stored.status == JobChunk.Status.DONE and stored.finished_at >= before
    runs = list(OptimizationRun.objects.filter(job=job).order_by("grid_index"))
    assert [r.grid_index for r in runs] == [0, 1, 2, 3, 4]
    assert [r.status for r in runs] == ["succeeded"] * 4 + ["failed"]
    assert runs[4].params["fast"] == 10 and "cursed" in runs[4].error
    assert counters(job) == (4, 1, 2)
    assert fresh(job).heartbeat_at >= before
    assert fresh(job).status == JobStatus.RUNNING and fresh(job).finished_at is None


def test_the_last_commit_answers_no_chunk_remaining(job):
    remaining = []
    for chunk in chunks_of(job):
        claim = chunk_claim(chunk_id=chunk.id)
        remaining.append(chunk_commit(claim=claim, work=chunk_work(claim=claim)))
    assert remaining == [2, 1, 0]
    assert counters(job) == (12, 0, 0)
    assert fresh(job).status == JobStatus.RUNNING  # committing is not finalizing


def test_a_claim_lost_to_a_requeue_and_a_second_worker_stores_nothing(job, broker):
    chunk = chunks_of(job)[0]
    first = chunk_claim(chunk_id=chunk.id, worker="w1")
    work = chunk_work(claim=first)
    # w1 looks dead to the reaper; w2 gets the chunk again
    later = timezone.now() + dt.timedelta(seconds=STALE + 1)
    assert chunks_reap(now=later)["reset"] == 1
    second = chunk_claim(chunk_id=chunk.id, worker="w2")

    assert chunk_commit(claim=first, work=work) is None
    assert OptimizationRun.objects.count() == 0 and counters(job) == (0, 0, 3)
    stored = JobChunk.objects.get(id=chunk.id)
    assert (stored.status, stored.claim_token, stored.worker, stored.attempts) == (
        "running", second.token, "w2", 2
    )  # fmt: skip

    assert chunk_commit(claim=second, work=chunk_work(claim=second)) == 2
    assert OptimizationRun.objects.count() == 5 and counters(job) == (5, 0, 2)


def test_a_cancel_between_claim_and_commit_is_respected(job):
    first, second, third = chunks_of(job)
    assert chunk_execute(chunk_id=first.id) == "done"
    claim = chunk_claim(chunk_id=second.id, worker="w1")
    work = chunk_work(claim=claim)
    job_cancel(job=job)

    assert chunk_commit(claim=claim, work=work) is None

    assert sorted(OptimizationRun.objects.values_list("grid_index", flat=True)) == [0, 1, 2, 3, 4]
    assert counters(job) == (5, 0, 2)
    assert [c.status for c in chunks_of(job)] == ["done", "cancelled", "cancelled"]
    cancelled = fresh(job)
    assert cancelled.status == JobStatus.CANCELLED and cancelled.best_params is None
    assert chunk_execute(chunk_id=third.id) == "skipped"


def test_a_cancel_during_the_backtests_makes_execute_answer_lost(job, monkeypatch):
    chunk = chunks_of(job)[0]
    build_runs = chunk_runs

    def cancelled_meanwhile(job_, chunk_):
        runs = build_runs(job_, chunk_)
        job_cancel(job=fresh(job))
        return runs

    monkeypatch.setattr(sweeps, "chunk_runs", cancelled_meanwhile)
    assert chunk_execute(chunk_id=chunk.id, worker="w1") == "lost"
    assert OptimizationRun.objects.count() == 0 and counters(job) == (0, 0, 3)
    assert fresh(job).status == JobStatus.CANCELLED


def test_a_commit_for_a_job_no_longer_running_rolls_back_the_chunk(job):
    """The chunk row is updated first; a job that stopped running undoes that update too."""
    chunk = chunks_of(job)[0]
    claim = chunk_claim(chunk_id=chunk.id, worker="w1")
    work = chunk_work(claim=claim)
    OptimizationJob.objects.filter(id=job.id).update(status=JobStatus.FAILED)

    assert chunk_commit(claim=claim, work=work) is None

    stored = JobChunk.objects.get(id=chunk.id)
    assert (stored.status, stored.claim_token, stored.finished_at) == (
        "running", claim.token, None
    )  # fmt: skip
    assert OptimizationRun.objects.count() == 0 and counters(job) == (0, 0, 3)


def test_execute_finalizes_only_with_the_last_chunk(job):
    first, second, third = chunks_of(job)
    assert chunk_execute(chunk_id=first.id) == "done"
    assert chunk_execute(chunk_id=second.id) == "done"
    waiting = fresh(job)
    assert waiting.status == JobStatus.RUNNING and waiting.chunks_remaining == 1
    assert waiting.best_params is None and waiting.finished_at is None
    assert chunk_execute(chunk_id=third.id) == "done"
    done = fresh(job)
    assert done.status == JobStatus.SUCCEEDED and done.best_run_id is not None
    assert done.finished_at is not None


# --- release, reap, recover ------------------------------------------------------------------


def test_a_released_chunk_is_pending_again_and_its_old_claim_cannot_commit(job):
    chunk = chunks_of(job)[0]
    old = chunk_claim(chunk_id=chunk.id, worker="w1")
    work = chunk_work(claim=old)
    before = timezone.now()

    assert chunk_release(chunk_id=chunk.id, worker="w1") is True

    stored = JobChunk.objects.get(id=chunk.id)
    assert (stored.status, stored.claim_token, stored.worker) == ("pending", None, "")
    assert stored.enqueued_at >= before and stored.attempts == 1
    assert chunk_commit(claim=old, work=work) is None
    assert OptimizationRun.objects.count() == 0
    assert chunk_release(chunk_id=chunk.id, worker="w1") is False  # nothing held now
    assert chunk_execute(chunk_id=chunk.id, worker="w1") == "done"
    assert JobChunk.objects.get(id=chunk.id).attempts == 2
    assert OptimizationRun.objects.count() == 5


def beating(name: str, last_seen: dt.datetime) -> Worker:
    return Worker.objects.create(name=name, started_at=last_seen, last_seen=last_seen)


def test_the_reaper_resets_only_chunks_claimed_before_the_stale_limit(job, broker):
    """Workers without a heartbeat row: only the STALE_CHUNK_SECONDS limit applies."""
    a, b, c = chunks_of(job)
    limit = NOW - dt.timedelta(seconds=STALE)
    running_chunk(a, worker="dead", claimed_at=limit - dt.timedelta(seconds=1))
    running_chunk(b, worker="slow", claimed_at=limit)  # exactly at the limit: not yet stale
    OptimizationJob.objects.filter(id=job.id).update(status=JobStatus.RUNNING, heartbeat_at=NOW)
    JobChunk.objects.filter(id=c.id).update(enqueued_at=NOW)

    assert chunks_reap(now=NOW) == {"reset": 1, "requeued": 0, "failed": 0, "finalized": 0}

    reset = JobChunk.objects.get(id=a.id)
    assert (reset.status, reset.claim_token, reset.worker) == ("pending", None, "")
    assert reset.enqueued_at == NOW
    assert reset.error.startswith("running for more than 900 s on dead (killed by the task time")
    kept = JobChunk.objects.get(id=b.id)
    assert (kept.status, kept.worker, kept.claimed_at) == ("running", "slow", limit)
    assert kept.claim_token is not None and kept.error == ""
    assert broker.take() == {"celery": [], "recovered": [a.id]}


def test_the_reaper_resets_the_chunks_of_a_worker_whose_heartbeat_stopped(job, broker):
    a, b, c = chunks_of(job)
    lost_before = NOW - dt.timedelta(seconds=LOST)
    beating("dead@h", lost_before - dt.timedelta(seconds=1))
    beating("alive@h", lost_before)  # exactly at the limit: still alive
    running_chunk(a, worker="dead@h", claimed_at=lost_before - dt.timedelta(seconds=5))
    running_chunk(b, worker="alive@h", claimed_at=lost_before - dt.timedelta(seconds=5))
    # claimed by the dead worker only a moment ago: its claim is newer than the limit (the
    # heartbeat may lag a claim), so it waits for the next round
    running_chunk(c, worker="dead@h", claimed_at=lost_before)
    OptimizationJob.objects.filter(id=job.id).update(status=JobStatus.RUNNING, heartbeat_at=NOW)

    assert chunks_reap(now=NOW) == {"reset": 1, "requeued": 0, "failed": 0, "finalized": 0}

    reset = JobChunk.objects.get(id=a.id)
    assert (reset.status, reset.worker, reset.enqueued_at) == ("pending", "", NOW)
    assert reset.error == "worker dead@h stopped (no heartbeat since 2026-03-02 11:59:29 UTC)"
    assert [ch.status for ch in chunks_of(job)] == ["pending", "running", "running"]
    assert broker.take() == {"celery": [], "recovered": [a.id]}
    later = NOW + dt.timedelta(seconds=1)
    Worker.objects.filter(name="alive@h").update(last_seen=later)
    assert chunks_reap(now=later)["reset"] == 1  # c's claim is old enough now
    assert broker.take() == {"celery": [], "recovered": [c.id]}


def test_the_reaper_resets_a_chunk_whose_pool_process_died_while_its_worker_lives(job, broker):
    """A pool process killed (out of memory, SIGKILL) under a live worker: the worker's
    heartbeat lists its live processes, and a chunk held by another one is free again."""
    a, b, c = chunks_of(job)
    seen = NOW - dt.timedelta(seconds=1)
    Worker.objects.create(name="w@h", started_at=seen, last_seen=seen, pids=[100, 101])
    claimed = NOW - dt.timedelta(seconds=LOST + 5)
    for chunk, pid in ((a, 999), (b, 101)):
        running_chunk(chunk, worker="w@h", claimed_at=claimed)
        JobChunk.objects.filter(id=chunk.id).update(pid=pid)
    OptimizationJob.objects.filter(id=job.id).update(status=JobStatus.RUNNING, heartbeat_at=NOW)

    assert chunks_reap(now=NOW) == {"reset": 1, "requeued": 0, "failed": 0, "finalized": 0}

    reset = JobChunk.objects.get(id=a.id)
    assert reset.status == "pending"
    assert reset.error == "process 999 of worker w@h died (killed, or out of memory)"
    assert JobChunk.objects.get(id=b.id).status == "running"  # its process lives
    assert broker.take() == {"celery": [], "recovered": [a.id]}


@pytest.mark.parametrize(
    "claimed_before_heartbeat, pids, reset",
    [(3.0, [100], True), (2.0, [100], False), (1.5, [100], False), (20.0, [], False)],
)
def test_a_claim_newer_than_the_heartbeats_process_list_is_not_judged_by_it(
    job, broker, claimed_before_heartbeat, pids, reset
):
    """The list is taken a moment before the heartbeat is stored: only a claim more than 2 s
    older than the heartbeat is judged by it. A worker that lists no processes (not a prefork
    pool) is judged by its heartbeat alone."""
    a = chunks_of(job)[0]
    seen = NOW - dt.timedelta(seconds=LOST - 1)  # alive, and older than the claims below
    Worker.objects.create(name="w@h", started_at=seen, last_seen=seen, pids=pids)
    running_chunk(a, worker="w@h", claimed_at=seen - dt.timedelta(seconds=claimed_before_heartbeat))
    JobChunk.objects.filter(id=a.id).update(pid=999)
    OptimizationJob.objects.filter(id=job.id).update(status=JobStatus.RUNNING, heartbeat_at=NOW)

    assert chunks_reap(now=NOW)["reset"] == int(reset)
    assert JobChunk.objects.get(id=a.id).status == ("pending" if reset else "running")


def test_a_lost_chunk_out_of_attempts_fails_with_its_job(job, broker):
    a, b, c = chunks_of(job)
    beating("dead@h", NOW - dt.timedelta(hours=1))
    running_chunk(a, worker="dead@h", claimed_at=NOW - dt.timedelta(hours=1))
    running_chunk(b, worker="dead@h", claimed_at=NOW - dt.timedelta(hours=1))
    JobChunk.objects.filter(id=a.id).update(attempts=ATTEMPTS)
    JobChunk.objects.filter(id=b.id).update(attempts=ATTEMPTS - 1)
    OptimizationJob.objects.filter(id=job.id).update(status=JobStatus.RUNNING, heartbeat_at=NOW)

    result = chunks_reap(now=NOW)

    assert result == {"reset": 0, "requeued": 0, "failed": 1, "finalized": 0}
    done = fresh(job)
    assert done.status == JobStatus.FAILED and done.finished_at is not None
    assert done.error == (
        "chunk 1 of 3 (BTC 1h, items 0-4) failed: lost 5 times; last: worker dead@h stopped "
        "(no heartbeat since 2026-03-02 11:00:00 UTC)"
    )
    assert [ch.status for ch in chunks_of(job)] == ["failed", "cancelled", "cancelled"]
    assert broker.take() == {"celery": [], "recovered": []}
    assert chunk_execute(chunk_id=b.id, worker="w2") == "skipped"
    assert OptimizationRun.objects.count() == 0


def test_the_reaper_requeues_pending_chunks_whose_messages_the_broker_lost(job, broker):
    a, b, c = chunks_of(job)
    limit = NOW - dt.timedelta(seconds=REQUEUE)
    JobChunk.objects.filter(id=a.id).update(enqueued_at=limit - dt.timedelta(seconds=1))
    JobChunk.objects.filter(id=b.id).update(enqueued_at=limit)  # exactly at the limit: kept
    JobChunk.objects.filter(id=c.id).update(enqueued_at=limit - dt.timedelta(hours=1))
    OptimizationJob.objects.filter(id=job.id).update(status=JobStatus.RUNNING, heartbeat_at=NOW)
    # the broker is empty: two chunks have waited long enough, none has a message

    assert chunks_reap(now=NOW) == {"reset": 0, "requeued": 2, "failed": 0, "finalized": 0}

    assert [ch.enqueued_at for ch in chunks_of(job)] == [NOW, limit, NOW]
    assert [ch.status for ch in chunks_of(job)] == ["pending"] * 3
    assert broker.take() == {"celery": [], "recovered": sorted([a.id, c.id])}


@pytest.mark.parametrize("queued, requeued", [(1, True), (2, False), (5, False)])
def test_a_backlog_the_broker_still_holds_is_not_published_again(job, broker, queued, requeued):
    """However long chunks wait, the reaper sends them again only when the broker holds fewer
    chunk messages than there are waiting chunks (a backlog is not re-published each round)."""
    a, b, _ = chunks_of(job)
    old = NOW - dt.timedelta(hours=3)
    JobChunk.objects.filter(job=job).update(enqueued_at=NOW)
    JobChunk.objects.filter(id__in=[a.id, b.id]).update(enqueued_at=old)
    OptimizationJob.objects.filter(id=job.id).update(status=JobStatus.RUNNING, heartbeat_at=old)
    chunks_enqueue([999_999] * queued)  # messages on the broker (of other chunks: counted)

    assert chunks_reap(now=NOW)["requeued"] == (2 if requeued else 0)

    assert broker.take() == {
        "celery": [999_999] * queued,
        "recovered": sorted([a.id, b.id]) if requeued else [],
    }
    assert JobChunk.objects.get(id=a.id).enqueued_at == (NOW if requeued else old)


@pytest.mark.parametrize(
    "heartbeat_age, requeued",
    [(REQUEUE + 1, True), (REQUEUE, False), (REQUEUE - 1, False)],
)
def test_a_broker_that_cannot_count_falls_back_on_the_jobs_progress(
    job, broker, monkeypatch, heartbeat_age, requeued
):
    """When the broker cannot say how many messages it holds, a job's waiting chunks are sent
    again once the job made no progress for REQUEUE_PENDING_SECONDS."""

    def unreachable(*args, **kwargs):
        raise ConnectionRefusedError("the broker is away")

    a = chunks_of(job)[0]
    old = NOW - dt.timedelta(seconds=REQUEUE + 60)
    JobChunk.objects.filter(job=job).update(enqueued_at=NOW)
    JobChunk.objects.filter(id=a.id).update(enqueued_at=old)
    OptimizationJob.objects.filter(id=job.id).update(
        status=JobStatus.RUNNING, heartbeat_at=NOW - dt.timedelta(seconds=heartbeat_age)
    )
    with monkeypatch.context() as patch:
        patch.setattr(queue.app, "connection_for_write", unreachable)
        assert queue.chunk_messages_queued() is None
        patch.setattr(queue.app, "send_task", lambda *a, **k: None)
        assert chunks_reap(now=NOW)["requeued"] == int(requeued)
    assert JobChunk.objects.get(id=a.id).enqueued_at == (NOW if requeued else old)


@pytest.mark.parametrize("job_status", [JobStatus.CANCELLED, JobStatus.FAILED])
def test_the_reaper_leaves_pending_chunks_of_a_finished_job(job, broker, job_status):
    old = NOW - dt.timedelta(hours=2)
    JobChunk.objects.filter(job=job).update(enqueued_at=old)
    OptimizationJob.objects.filter(id=job.id).update(status=job_status)
    assert chunks_reap(now=NOW) == {"reset": 0, "requeued": 0, "failed": 0, "finalized": 0}
    assert broker.take() == {"celery": [], "recovered": []}
    assert {ch.enqueued_at for ch in chunks_of(job)} == {old}


def test_the_reaper_sends_a_chunk_both_stale_and_pending_once(job, broker):
    a, b, _ = chunks_of(job)
    old = NOW - dt.timedelta(hours=2)
    JobChunk.objects.filter(job=job).update(enqueued_at=NOW)
    running_chunk(a, worker="dead", claimed_at=old)
    JobChunk.objects.filter(id=b.id).update(enqueued_at=old)
    OptimizationJob.objects.filter(id=job.id).update(status=JobStatus.RUNNING, heartbeat_at=old)
    assert chunks_reap(now=NOW) == {"reset": 1, "requeued": 1, "failed": 0, "finalized": 0}
    assert broker.take() == {"celery": [], "recovered": sorted([a.id, b.id])}


def test_the_reaper_finalizes_every_running_job_without_chunks_left(
    alice, btc, small_chunks, broker
):
    jobs = [make_job(alice, [btc], name=f"job {i}") for i in range(2)]
    for job in jobs:
        commit_all_without_finalizing(job)
    unfinished = make_job(alice, [btc], name="still running")
    broker.purge()  # the jobs' own messages
    chunk_execute(chunk_id=chunks_of(unfinished)[0].id)

    assert chunks_reap() == {"reset": 0, "requeued": 0, "failed": 0, "finalized": 2}

    assert [fresh(j).status for j in jobs] == [JobStatus.SUCCEEDED] * 2
    assert fresh(unfinished).status == JobStatus.RUNNING
    assert chunks_reap()["finalized"] == 0
    assert broker.take() == {"celery": [], "recovered": []}


def test_a_restarted_worker_gets_back_only_its_own_running_chunks(job, broker):
    a, b, c = chunks_of(job)
    running_chunk(a, worker="w9@host", claimed_at=NOW)
    running_chunk(b, worker="w8@host", claimed_at=NOW)
    JobChunk.objects.filter(id=c.id).update(status=JobChunk.Status.DONE, worker="w9@host")
    before = timezone.now()

    assert chunks_recover_worker(worker="w9@host") == 1

    recovered = JobChunk.objects.get(id=a.id)
    assert (recovered.status, recovered.claim_token, recovered.worker) == ("pending", None, "")
    assert recovered.enqueued_at >= before
    assert recovered.error == "worker w9@host restarted while it ran the chunk"
    other = JobChunk.objects.get(id=b.id)
    assert (other.status, other.worker) == ("running", "w8@host")
    assert JobChunk.objects.get(id=c.id).status == JobChunk.Status.DONE
    assert broker.take() == {"celery": [], "recovered": [a.id]}
    assert chunks_recover_worker(worker="w9@host") == 0
    assert broker.take() == {"celery": [], "recovered": []}


# --- finalize --------------------------------------------------------------------------------


def test_finalize_refuses_a_job_with_chunks_left_or_not_running(job):
    assert job_finalize(job_id=job.id) is False  # pending, 3 chunks left
    chunk_execute(chunk_id=chunks_of(job)[0].id)
    assert job_finalize(job_id=job.id) is False  # running, 2 chunks left
    OptimizationJob.objects.filter(id=job.id).update(chunks_remaining=0, status=JobStatus.PENDING)
    assert job_finalize(job_id=job.id) is False  # no chunk left, but not running
    refused = fresh(job)
    assert refused.status == JobStatus.PENDING
    assert refused.best_run_id is None and refused.finished_at is None and refused.error == ""


def test_finalize_happens_once_with_its_side_effects(alice, btc, small_chunks):
    approve("PILOT")
    template = JobTemplate.objects.create(
        name="weekly", strategy="sma_cross", parameter_grid=SMALL_GRID, owner=grant(alice),
        auto_apply="dry_run", min_improvement_pct=-1e9, min_trades=1,
    )  # fmt: skip
    template.datasets.set([btc])
    job = template_fire(template_id=template.id, now=NOW).job
    commit_all_without_finalizing(job)

    assert job_finalize(job_id=job.id) is True
    first = fresh(job)
    assert job_finalize(job_id=job.id) is False
    assert chunks_reap()["finalized"] == 0

    again = fresh(job)
    assert again.status == JobStatus.SUCCEEDED
    assert (again.finished_at, again.best_run_id, again.best_params, again.evaluation) == (
        first.finished_at, first.best_run_id, first.best_params, first.evaluation
    )  # fmt: skip
    assert again.evaluation["overfitting"]["best_run"] == again.best_run_id
    firing = TemplateFiring.objects.get(job=job)
    assert firing.apply_status == "done" and len(firing.apply_result["changes"]) == 1
    proposal = ParameterChange.objects.get()  # the auto-tuner's dry run: one proposal, not two
    assert proposal.dry_run and proposal.job_id == job.id


def test_best_params_name_the_top_run_overall_and_on_each_dataset(alice, db):
    datasets = hourly("BTC", "ETH")
    job = make_job(alice, datasets, objective="total_return_pct")
    commit_all_without_finalizing(job)
    assert job_finalize(job_id=job.id) is True

    scored = OptimizationRun.objects.filter(job=job, total_return_pct__isnull=False)
    tops = [
        scored.filter(dataset=ds).order_by("-total_return_pct", "id").first() for ds in datasets
    ]
    overall = max(tops, key=lambda r: (r.total_return_pct, -r.id))

    def summary(run):
        return {
            "run_id": run.id,
            "dataset_id": run.dataset_id,
            "dataset": run.dataset.name,
            "symbol": run.dataset.symbol,
            "timeframe": "1h",
            "params": run.params,
            "value": run.total_return_pct,
        }

    done = fresh(job)
    assert done.best_run_id == overall.id
    assert done.best_params == {
        "objective": "total_return_pct",
        "overall": summary(overall),
        "per_dataset": [summary(r) for r in tops],
    }
    assert [s["symbol"] for s in done.best_params["per_dataset"]] == ["BTC", "ETH"]
    assert done.error == "" and done.status == JobStatus.SUCCEEDED


@pytest.mark.parametrize("tolerance, status", [(0.5, "succeeded"), (0.49, "failed")])
def test_a_job_fails_only_when_the_failed_share_exceeds_the_tolerance(
    alice, btc, settings, cursed_fast, tolerance, status
):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "FAILURE_TOLERANCE": tolerance}
    cursed_fast(5)
    grid = {"fast": [5, 10], "slow": [30, 60], "sl_pct": [1.0, 2.0], "rr": [2.0]}  # 4 of 8 fail
    job = make_job(alice, [btc], grid=grid)
    commit_all_without_finalizing(job)
    assert job_finalize(job_id=job.id) is True
    done = fresh(job)
    assert (done.completed_runs, done.failed_runs, done.status) == (4, 4, status)
    assert done.best_run.params["fast"] == 10  # the best of the runs that succeeded
    if status == "failed":
        assert done.error == (
            "4 of 8 runs failed (tolerance 49%); first error: ValueError: fast in (5,) is cursed"
        )
    else:
        assert done.error == ""


def test_a_job_whose_every_run_failed_fails_whatever_the_tolerance(
    alice, btc, settings, cursed_fast
):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "FAILURE_TOLERANCE": 1.0}
    cursed_fast(5, 10, 20)
    job = make_job(alice, [btc])
    commit_all_without_finalizing(job)
    assert job_finalize(job_id=job.id) is True
    done = fresh(job)
    assert done.status == JobStatus.FAILED and (done.completed_runs, done.failed_runs) == (0, 12)
    assert done.error.startswith("12 of 12 runs failed (tolerance 100%); first error: ValueError")
    assert done.best_run is None and done.best_params is None
    assert done.evaluation is None  # no best run: no overfitting figures
    assert done.finished_at is not None


@pytest.mark.parametrize("broken", ["a row short", "a metric short"])
def test_a_strategy_answering_the_wrong_shape_fails_the_chunk_loudly(job, monkeypatch, broken):
    """A strategy whose metrics matrix does not match its parameter sets must not store a
    partial or shifted chunk: the chunk and the job fail at once (another attempt would fail
    the same way) with the error, and nothing is stored."""
    strategy = get_strategy("sma_cross")
    original = type(strategy).run_many

    def run_many(self, ctx, param_list, costs):
        matrix = original(self, ctx, param_list, costs)
        return matrix[:-1] if broken == "a row short" else matrix[:, :-1]

    monkeypatch.setattr(type(strategy), "run_many", run_many)
    first, second, _ = chunks_of(job)
    assert chunk_execute(chunk_id=first.id, worker="w1") == "failed"
    assert OptimizationRun.objects.count() == 0 and counters(job) == (0, 0, 3)
    failed = JobChunk.objects.get(id=first.id)
    assert failed.status == JobChunk.Status.FAILED and failed.finished_at is not None
    assert failed.error.startswith("ValueError: zip() argument 2 is")
    done = fresh(job)
    assert done.status == JobStatus.FAILED and done.finished_at is not None
    assert done.error == f"chunk 1 of 3 (BTC 1h, items 0-4) failed: {failed.error}"
    assert [c.status for c in chunks_of(job)] == ["failed", "cancelled", "cancelled"]
    assert chunk_execute(chunk_id=second.id, worker="w1") == "skipped"
