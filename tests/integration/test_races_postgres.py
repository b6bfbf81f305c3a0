"""Races of the chunk protocol and the quota on PostgreSQL: threads, each with its own
connection, real transactions, and the interleaving forced rather than hoped for.

Each test holds a worker or a transaction at a chosen point and only moves on once PostgreSQL
shows the other side waiting for a row lock (``pg_stat_activity``), so the order below is the
order that happened, every run:

- a cancel between a chunk's claim and its commit: committed before the commit starts, or
  holding the chunk rows while the commit waits (nothing stored), or arriving while the commit
  holds the chunk row (the chunk's runs count, the job is still cancelled);
- the finisher and the reaper finalizing the same job at once: one finalization, one
  overfitting report, one auto-apply;
- N creations by one user at once against the active-jobs and jobs-per-minute limits: exactly
  the quota is created, every other request gets the 429 error, nothing partial is stored.

A worker is held between claim and commit by ``GatedSma``, a test strategy whose backtest waits
until the test opens its gate (a long backtest, on demand); everything else is the product's
code, and the other holds are ordinary row locks taken by the test's own transaction.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import (
    JobChunk,
    JobStatus,
    JobTemplate,
    OptimizationJob,
    OptimizationRun,
)
from apps.optimization.services.execution import (
    chunk_claim,
    chunk_commit,
    chunk_execute,
    chunk_work,
    chunks_reap,
    job_finalize,
)
from apps.optimization.services.jobs import job_cancel, job_copy
from apps.optimization.services.monte_carlo import monte_carlo_job_create
from apps.optimization.services.schedules import template_fire
from apps.optimization.services.walk_forward import walk_forward_job_create
from apps.strategies.models import ParameterChange, StrategyConfig
from backtestlab.engine.strategies import STRATEGIES, register
from backtestlab.engine.strategies.sma_cross import SmaCross
from backtestlab.errors import ApplicationError
from tests.factories import SMALL_GRID, make_job, run_all_chunks
from tests.strategies.conftest import approve, grant

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 30.0  # seconds: far beyond any step here, short enough to fail a hung test


class GatedSma(SmaCross):
    """SMA crossover whose backtest waits at a gate the test opens (tests only)."""

    key = "gated_sma"
    label = "SMA crossover that waits for the test (tests only)"

    def __init__(self):
        super().__init__()
        self.computing = threading.Event()  # a worker holds its claim and is computing
        self.opened = threading.Event()
        self.opened.set()

    def close(self) -> None:
        self.computing.clear()
        self.opened.clear()

    def run_many(self, ctx, param_list, costs):
        self.computing.set()
        if not self.opened.wait(WAIT):
            raise TimeoutError("the test never opened the gate")
        return super().run_many(ctx, param_list, costs)


@pytest.fixture
def gate():
    strategy = register(GatedSma())
    yield strategy
    strategy.opened.set()
    STRATEGIES.pop(GatedSma.key, None)


@pytest.fixture
def btc(transactional_db):
    synthetic_universe_create(symbols=("BTC",), days=60, timeframes=("1h",))
    return Dataset.objects.get(kind=Dataset.Kind.CANDLES)


@pytest.fixture
def three_chunks(settings):
    """SMALL_GRID's 12 runs in chunks of 4: grid indexes [0:4) [4:8) [8:12)."""
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "CHUNK_SIZE": 4}


class InThread(threading.Thread):
    """``body()`` in its own thread, on its own database connection (closed at the end)."""

    def __init__(self, body, name: str):
        super().__init__(name=name, daemon=True)
        self.body = body
        self.value = None
        self.error: BaseException | None = None

    def run(self):
        try:
            self.value = self.body()
        except BaseException as exc:  # handed to the test by result()
            self.error = exc
        finally:
            connections.close_all()  # this thread's connections only

    def result(self):
        self.join(WAIT)
        if self.is_alive():
            pytest.fail(f"{self.name} still running after {WAIT:.0f} s", pytrace=False)
        if self.error is not None:
            raise self.error
        return self.value


def started(body, name: str) -> InThread:
    thread = InThread(body, name)
    thread.start()
    return thread


def lock_waiters() -> int:
    """Sessions on the test database waiting for a lock right now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # fresh figures inside a transaction
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_for_lock_waiters(n: int, threads: list[InThread]) -> None:
    deadline = time.monotonic() + WAIT
    while lock_waiters() < n:
        ended = [t for t in threads if not t.is_alive()]
        if ended or time.monotonic() > deadline:
            detail = ", ".join(f"{t.name}: {t.error or t.value!r}" for t in ended)
            pytest.fail(
                f"expected {n} sessions waiting for a lock, saw {lock_waiters()}; "
                f"finished instead of waiting: {detail or 'none'}",
                pytrace=False,
            )
        time.sleep(0.02)


def chunk_ids(job) -> list[int]:
    return list(job.chunks.order_by("index").values_list("id", flat=True))


def chunk_statuses(job) -> list[str]:
    return list(job.chunks.order_by("index").values_list("status", flat=True))


def stored_grid_indexes(job) -> list[int]:
    return sorted(OptimizationRun.objects.filter(job=job).values_list("grid_index", flat=True))


def fresh(job) -> OptimizationJob:
    return OptimizationJob.objects.get(id=job.id)


# --- a cancel between a chunk's claim and its commit ------------------------------------------


def test_a_cancel_committed_while_a_chunk_computes_stores_none_of_its_runs(alice, btc, gate):
    job = make_job(alice, [btc], strategy=GatedSma.key)
    (chunk_id,) = chunk_ids(job)
    gate.close()
    worker = started(lambda: chunk_execute(chunk_id=chunk_id, worker="w1"), "worker")
    assert gate.computing.wait(WAIT)
    claimed = JobChunk.objects.get(id=chunk_id)
    assert (claimed.status, claimed.worker, claimed.attempts) == ("running", "w1", 1)
    assert fresh(job).status == JobStatus.RUNNING  # the claim started the job

    job_cancel(job=job)  # committed while the worker computes
    gate.opened.set()

    assert worker.result() == "lost"
    job = fresh(job)
    assert job.status == JobStatus.CANCELLED and job.finished_at is not None
    assert (job.completed_runs, job.failed_runs, job.chunks_remaining) == (0, 0, 1)
    assert job.best_run is None and job.best_params is None
    assert OptimizationRun.objects.filter(job=job).count() == 0
    assert chunk_statuses(job) == ["cancelled"]
    assert chunk_execute(chunk_id=chunk_id) == "skipped"  # a redelivery, say
    assert OptimizationRun.objects.filter(job=job).count() == 0


def test_a_commit_waiting_behind_a_cancel_finds_its_claim_lost(alice, btc, gate, three_chunks):
    job = make_job(alice, [btc], strategy=GatedSma.key)
    first, second, _third = chunk_ids(job)
    assert chunk_execute(chunk_id=first) == "done"
    gate.close()
    worker = started(lambda: chunk_execute(chunk_id=second, worker="w1"), "worker")
    assert gate.computing.wait(WAIT)

    with transaction.atomic():  # the cancel holds the chunk and job rows until this commits
        job_cancel(job=job)
        gate.opened.set()
        wait_for_lock_waiters(1, [worker])  # the worker's commit waits for the chunk row

    assert worker.result() == "lost"
    job = fresh(job)
    assert job.status == JobStatus.CANCELLED
    assert (job.completed_runs, job.failed_runs, job.chunks_remaining) == (4, 0, 2)
    assert stored_grid_indexes(job) == [0, 1, 2, 3]  # the first chunk's, none of the second's
    assert chunk_statuses(job) == ["done", "cancelled", "cancelled"]
    assert job.best_params is None


def test_a_cancel_waiting_behind_a_commit_keeps_the_counters_equal_to_the_runs(
    alice, btc, gate, three_chunks
):
    job = make_job(alice, [btc], strategy=GatedSma.key)
    first, second, third = chunk_ids(job)
    assert chunk_execute(chunk_id=first) == "done"
    gate.close()
    worker = started(lambda: chunk_execute(chunk_id=second, worker="w1"), "worker")
    assert gate.computing.wait(WAIT)

    with transaction.atomic():  # another session holds the job row for a moment
        OptimizationJob.objects.select_for_update().get(id=job.id)
        gate.opened.set()
        # The worker marked its chunk done (not committed) and waits for the job row ...
        wait_for_lock_waiters(1, [worker])
        cancel = started(lambda: job_cancel(job=fresh(job)), "cancel")
        # ... and the cancel waits for the worker's chunk row.
        wait_for_lock_waiters(2, [worker, cancel])

    assert worker.result() == "done"
    assert cancel.result().status == JobStatus.CANCELLED
    job = fresh(job)
    assert job.status == JobStatus.CANCELLED
    assert (job.completed_runs, job.failed_runs, job.chunks_remaining) == (8, 0, 1)
    assert stored_grid_indexes(job) == list(range(8))  # committed before the cancel
    assert chunk_statuses(job) == ["done", "done", "cancelled"]
    assert job.best_params is None  # not finalized: a chunk never ran
    assert chunk_execute(chunk_id=third) == "skipped"
    assert OptimizationRun.objects.filter(job=job).count() == 8


# --- two finalizations racing -------------------------------------------------------------------


def test_the_finisher_and_the_reaper_finalizing_at_once_finalize_once(alice, btc, three_chunks):
    approve("PRODUCTION")
    template = JobTemplate.objects.create(
        name="weekly",
        strategy="sma_cross",
        parameter_grid=SMALL_GRID,
        min_trades=1,
        owner=grant(alice),
        auto_apply="apply",
        min_improvement_pct=-1e9,
    )
    template.datasets.set([btc])
    firing = template_fire(template_id=template.id, now=dt.datetime(2026, 11, 21, tzinfo=dt.UTC))
    job = firing.job
    first, second, last = chunk_ids(job)
    assert [chunk_execute(chunk_id=c) for c in (first, second)] == ["done", "done"]
    # The finisher's last chunk, committed; its finalize is the next step.
    claim = chunk_claim(chunk_id=last, worker="w1")
    assert chunk_commit(claim=claim, work=chunk_work(claim=claim)) == 0

    with transaction.atomic():  # both read the job and rank its runs, then wait for its row
        OptimizationJob.objects.select_for_update().get(id=job.id)
        finisher = started(lambda: job_finalize(job_id=job.id), "finisher")
        reaper = started(lambda: chunks_reap()["finalized"], "reaper")
        wait_for_lock_waiters(2, [finisher, reaper])

    assert sorted([finisher.result(), reaper.result()]) == [0, 1]  # False/True count as 0/1
    job = fresh(job)
    scored = OptimizationRun.objects.filter(job=job, sharpe__isnull=False)
    best = scored.order_by("-sharpe", "id").first()  # the objective's top run (ties: lowest id)
    assert job.status == JobStatus.SUCCEEDED and job.best_run_id == best.id
    assert job.best_params["overall"]["run_id"] == best.id
    assert job.evaluation["overfitting"]["best_run"] == best.id
    firing.refresh_from_db()
    assert firing.apply_status == "done", firing.apply_result
    assert len(firing.apply_result["changes"]) == 1
    assert ParameterChange.objects.count() == 1  # applied once
    config = StrategyConfig.objects.get()
    assert config.version == 1 and config.params == best.params
    assert job_finalize(job_id=job.id) is False  # and never again


# --- concurrent creations against the quota ----------------------------------------------------


def lock_user_and_race(user, bodies: list) -> list:
    """Start every body while ``user``'s row is locked; release once all of them wait."""
    with transaction.atomic():
        get_user_model().objects.select_for_update().get(pk=user.pk)
        threads = [started(body, f"request {i}") for i, body in enumerate(bodies)]
        wait_for_lock_waiters(len(threads), threads)
    return [t.result() for t in threads]


def test_concurrent_api_creations_never_exceed_the_active_jobs_limit(alice, btc, settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "MAX_ACTIVE_JOBS_PER_USER": 2}
    body = {
        "name": "racing",
        "strategy": "sma_cross",
        "datasets": [btc.id],
        "parameter_grid": SMALL_GRID,
    }

    def create():
        client = APIClient()
        client.force_authenticate(alice)
        response = client.post("/api/jobs/", body, format="json")
        return response.status_code, response.json()

    answers = lock_user_and_race(alice, [create] * 6)

    assert sorted(status for status, _ in answers) == [201, 201, 429, 429, 429, 429]
    for status, answer in answers:
        if status == 429:
            assert answer["ok"] is False
            assert answer["error"].startswith("you have 2 jobs pending or running (limit 2)")
    created = {answer["id"] for status, answer in answers if status == 201}
    assert set(OptimizationJob.objects.values_list("id", flat=True)) == created
    assert JobChunk.objects.count() == 2  # one chunk each, none of a refused request
    assert OptimizationJob.datasets.through.objects.count() == 2


def test_concurrent_creations_on_every_surface_never_exceed_the_jobs_per_minute(
    alice, btc, settings
):
    source = make_job(alice, [btc], name="source sweep")
    run_all_chunks(source)  # finished: counts for the minute, not as active
    settings.BACKTESTLAB = {
        **settings.BACKTESTLAB,
        "JOBS_PER_MINUTE": 4,
        "MAX_ACTIVE_JOBS_PER_USER": 100,
    }

    def outcome(create):
        def body():
            try:
                return create().id
            except ApplicationError as exc:
                return exc.status, exc.message

        return body

    def sweep():
        return make_job(alice, [btc], name="sweep")

    def rerun():
        return job_copy(job=fresh(source), user=alice, start=True, rerun=True)

    def monte_carlo():
        best = OptimizationRun.objects.get(id=fresh(source).best_run_id)
        return monte_carlo_job_create(user=alice, run=best, sims=500, seed=7)

    def walk_forward():
        return walk_forward_job_create(
            user=alice, strategy="sma_cross", dataset_id=btc.id, parameter_grid=SMALL_GRID
        )

    surfaces = [sweep, rerun, monte_carlo, walk_forward] * 2
    outcomes = lock_user_and_race(alice, [outcome(create) for create in surfaces])

    created = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if not isinstance(o, int)]
    assert len(created) == 3 and len(refused) == 5, outcomes
    assert refused == [(429, refused[0][1])] * 5
    assert refused[0][1].startswith("you created 4 jobs in the last minute (limit 4)")
    jobs = OptimizationJob.objects.exclude(id=source.id)
    assert sorted(jobs.values_list("id", flat=True)) == sorted(created)
    for job in jobs:  # each created job is whole: its chunks and its dataset
        assert job.chunks.count() == job.chunks_total > 0
        assert list(job.datasets.all()) == [btc]
    assert JobChunk.objects.exclude(job=source).count() == sum(j.chunks_total for j in jobs)


# --- the claim ---------------------------------------------------------------------------------

ROUNDS = 2000


def test_two_claimers_racing_for_one_chunk_never_both_win(alice, btc, settings):
    """Thousands of rounds: the chunk is made PENDING, two threads (own connections) claim it
    at the same instant. Exactly one claim wins every round (the claim is an UPDATE of the
    chunk row alone, which the second claimer re-checks after the first one's lock)."""
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "CHUNK_MAX_ATTEMPTS": 10 * ROUNDS}
    job = make_job(alice, [btc])
    (chunk_id,) = chunk_ids(job)
    start, end = threading.Barrier(3, timeout=WAIT), threading.Barrier(3, timeout=WAIT)
    wins = {"a": [], "b": []}

    def claimer(name):
        def body():
            for _ in range(ROUNDS):
                start.wait()
                wins[name].append(chunk_claim(chunk_id=chunk_id, worker=name) is not None)
                end.wait()

        return body

    threads = [started(claimer("a"), "claimer a"), started(claimer("b"), "claimer b")]
    for _ in range(ROUNDS):
        JobChunk.objects.filter(id=chunk_id).update(
            status=JobChunk.Status.PENDING, claim_token=None, worker=""
        )
        start.wait()
        end.wait()
    for thread in threads:
        thread.result()

    per_round = [a + b for a, b in zip(wins["a"], wins["b"], strict=True)]
    assert len(per_round) == ROUNDS
    assert per_round.count(2) == 0, f"{per_round.count(2)} rounds with two winners"
    assert per_round.count(1) == ROUNDS
    assert 0 < sum(wins["a"]) < ROUNDS  # both threads won some rounds: they did race
    assert JobChunk.objects.get(id=chunk_id).attempts == ROUNDS


def test_a_claim_waiting_behind_a_cancel_leaves_the_chunk_cancelled(alice, btc, three_chunks):
    job = make_job(alice, [btc])
    first = chunk_ids(job)[0]
    with transaction.atomic():
        # a cancel in flight: the chunk rows changed (and locked), not yet committed
        JobChunk.objects.filter(job=job).update(status=JobChunk.Status.CANCELLED)
        claimer = started(lambda: chunk_claim(chunk_id=first, worker="w1"), "claimer")
        wait_for_lock_waiters(1, [claimer])
        OptimizationJob.objects.filter(id=job.id).update(status=JobStatus.CANCELLED)
    assert claimer.result() is None
    assert chunk_statuses(job) == ["cancelled"] * 3
    assert JobChunk.objects.get(id=first).attempts == 0
