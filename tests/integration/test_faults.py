"""Faults on the real stack: redelivered messages, a Redis restart, terminated PostgreSQL
connections, a worker killed and replaced under another name, a chunk whose data vanished, a
cancel across a worker restart, backtests that raise.

The recovery tests run with the **default settings** and the real ``celery beat`` (the reaper
every 10 s): nothing is sped up and the test loop never reaps, and each measures how long the
work that the fault orphaned waited (asserted under 60 s, printed for docs/reliability.md).
The worker killed with SIGKILL half-way and restarted under its own name, and two workers
receiving every chunk twice at once, are in test_worker_jobs.py.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import JobChunk, JobStatus, OptimizationJob, OptimizationRun
from apps.optimization.queue import chunks_enqueue
from apps.optimization.services.execution import chunks_reap
from apps.optimization.services.jobs import job_cancel, job_create
from backtestlab.celery import app as celery_app
from tests.integration.conftest import free_port
from tests.integration.test_worker_jobs import TASK_RESULT, TOTAL, assert_complete, create_job

pytestmark = pytest.mark.django_db(transaction=True)

FAST_REAPER = {"BACKTESTLAB_REQUEUE_PENDING_SECONDS": "5"}
FAULT_MODULE = "tests.integration.fault_strategies"
# What a redelivered chunk could disturb (evaluation figures may be added after finalization).
JOB_STATE = (
    "status", "total_runs", "completed_runs", "failed_runs", "chunks_remaining",
    "best_run_id", "best_params", "error", "finished_at",
)  # fmt: skip


@pytest.fixture
def fast_reaper(settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "REQUEUE_PENDING_SECONDS": 5}


@pytest.fixture
def small_chunks(settings):
    """50 runs per chunk: 40 chunks per 2,000-run job."""
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "CHUNK_SIZE": 50}


@pytest.fixture
def minute_dataset(transactional_db):
    """One synthetic quarter of BTC minute candles: a 2,000-run job takes a while to run, so a
    fault can be injected while it is mid-way."""
    synthetic_universe_create(symbols=("BTC",), days=90, timeframes=(), with_minutes=True)
    return Dataset.objects.get(kind=Dataset.Kind.CANDLES, timeframe="1m")


def wait_until(predicate, *, timeout: float, message) -> float:
    """Seconds until ``predicate()`` holds (fails the test after ``timeout``)."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            pytest.fail(message() if callable(message) else message, pytrace=False)
        time.sleep(0.05)
    return time.monotonic() - started


RECOVERY_SECONDS = 60  # the bound, with the default settings


def wait_mid_job(job, failure_report) -> None:
    """Until a fifth of the job is done and a chunk is being computed (a fault's moment)."""
    wait_until(
        lambda: (
            done_runs(job.id) >= TOTAL * 0.2
            and JobChunk.objects.filter(job=job, status=JobChunk.Status.RUNNING).exists()
        ),
        timeout=180,
        message=lambda: failure_report(job.id),
    )


def chunk_ids_of(job, status) -> list[int]:
    return list(JobChunk.objects.filter(job=job, status=status).values_list("id", flat=True))


def picked_up(chunk_ids) -> bool:
    """Some chunk of ``chunk_ids`` (PENDING or orphaned at the fault) is being run again."""
    return (
        JobChunk.objects.filter(
            id__in=chunk_ids, status__in=[JobChunk.Status.RUNNING, JobChunk.Status.DONE]
        )
        .exclude(worker="")
        .exists()
    )


def done_runs(job_id: int) -> int:
    job = OptimizationJob.objects.get(id=job_id)
    return job.completed_runs + job.failed_runs


def logged_results(workers) -> list[str]:
    return [r for w in workers for r in TASK_RESULT.findall(w.log_tail(lines=100_000))]


def assert_no_stale_running_job() -> None:
    """The reaper left nothing behind: no job RUNNING with a heartbeat nobody refreshes."""
    assert not OptimizationJob.objects.filter(status=JobStatus.RUNNING).exists()
    assert not JobChunk.objects.filter(status=JobChunk.Status.RUNNING).exists()


# --- redelivery ------------------------------------------------------------------------------


def test_every_chunk_delivered_again_after_the_job_finished_changes_nothing(
    alice, hourly_datasets, small_chunks, start_worker, wait_for_job, failure_report
):
    worker = start_worker("seq", concurrency=2)
    job = create_job(alice, hourly_datasets[0], "faults: delivered twice in sequence")
    job = wait_for_job(job.id)
    assert_complete(job, failure_report(job.id))
    before = sorted(OptimizationRun.objects.filter(job=job).values_list("id", "param_hash"))
    counters = OptimizationJob.objects.filter(id=job.id).values(*JOB_STATE).get()
    chunk_ids = list(JobChunk.objects.filter(job=job).values_list("id", flat=True))

    chunks_enqueue(chunk_ids)  # the second delivery of every chunk, one after another
    wait_until(
        lambda: len(logged_results([worker])) >= 2 * len(chunk_ids),
        timeout=60,
        message=lambda: failure_report(job.id),
    )

    results = logged_results([worker])
    assert results.count("done") == len(chunk_ids) and results.count("skipped") == len(chunk_ids)
    assert sorted(OptimizationRun.objects.filter(job=job).values_list("id", "param_hash")) == (
        before
    )
    assert OptimizationJob.objects.filter(id=job.id).values(*JOB_STATE).get() == counters
    assert set(JobChunk.objects.filter(job=job).values_list("attempts", flat=True)) == {1}


# --- Redis restarted mid-job -----------------------------------------------------------------


class PrivateRedis:
    """A redis-server of this test's own (never the machine's shared one), without persistence:
    a restart loses every queued and unacknowledged message, as a crashed broker would."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_dir / f"redis-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                assert self.proc.poll() is None, self.log_path.read_text()
                return False

        wait_until(up, timeout=20, message=lambda: self.log_path.read_text())
        client.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _point_producer_at(url: str) -> None:
    """Make this process's celery app publish to ``url`` (its pools were built for another)."""
    celery_app.conf.broker_url = url
    # kombu keeps one pool per broker URL; dropping the app's references is enough (closing
    # them would close the shared pool this process uses again after the test).
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def private_redis(tmp_path, settings, monkeypatch):
    server = PrivateRedis(tmp_path).start()
    previous = celery_app.conf.broker_url
    settings.CELERY_BROKER_URL = server.url
    monkeypatch.setenv("CELERY_BROKER_URL", server.url)  # celery reads it before its conf
    _point_producer_at(server.url)
    yield server
    monkeypatch.undo()
    _point_producer_at(previous)
    server.kill()


def test_redis_restart_mid_job_loses_and_doubles_nothing(
    alice,
    minute_dataset,
    small_chunks,
    private_redis,
    start_worker,
    start_beat,
    wait_for_job,
    failure_report,
):
    env = {"CELERY_BROKER_URL": private_redis.url}
    start_worker("redis-a", concurrency=1, env=env)
    start_worker("redis-b", concurrency=1, env=env)
    start_beat(env=env)
    job = create_job(alice, minute_dataset, "faults: redis restart")
    wait_until(
        lambda: done_runs(job.id) >= TOTAL * 0.3,
        timeout=180,
        message=lambda: failure_report(job.id),
    )

    private_redis.kill()  # every queued and unacknowledged message is gone
    assert done_runs(job.id) < TOTAL, failure_report(job.id)
    waiting = chunk_ids_of(job, JobChunk.Status.PENDING)
    private_redis.start()  # same port, empty
    assert waiting, failure_report(job.id)

    resumed = wait_until(
        lambda: picked_up(waiting),
        timeout=RECOVERY_SECONDS,
        message=lambda: f"no lost chunk re-run within 60 s\n{failure_report(job.id)}",
    )
    print(f"\nredis restarted empty: lost chunks running again after {resumed:.1f} s")
    job = wait_for_job(job.id, timeout=240)

    assert_complete(job, failure_report(job.id))
    assert_no_stale_running_job()


# --- a worker killed and replaced under another name --------------------------------------------


def test_a_worker_killed_and_replaced_under_a_new_name_loses_nothing(
    alice, minute_dataset, small_chunks, start_worker, start_beat, wait_for_job, failure_report
):
    """A crashed host or a recreated container: the node never comes back under its name, so
    only its silence (no heartbeat for WORKER_LOST_SECONDS) tells the reaper its chunk is free."""
    doomed = start_worker("doomed", concurrency=1)
    start_beat()
    job = create_job(alice, minute_dataset, "faults: worker replaced")
    wait_mid_job(job, failure_report)
    for _ in range(50):  # frozen while we look, so it cannot commit between the look and the kill
        doomed.pause()
        orphaned = chunk_ids_of(job, JobChunk.Status.RUNNING)
        if orphaned:
            break
        doomed.resume()  # between two chunks: let it claim the next one
        time.sleep(0.1)
    doomed.kill()  # SIGKILL: no goodbye, its heartbeat row just ages
    assert orphaned, failure_report(job.id)
    start_worker("replacement", concurrency=1)

    recovered = wait_until(
        lambda: (
            JobChunk.objects.filter(id__in=orphaned, worker__startswith="replacement@").exists()
            or JobChunk.objects.filter(id__in=orphaned, status=JobChunk.Status.DONE).exists()
        ),
        timeout=RECOVERY_SECONDS,
        message=lambda: f"the dead worker's chunk waited over 60 s\n{failure_report(job.id)}",
    )
    print(f"\nworker killed, replaced under a new name: its chunk re-run after {recovered:.1f} s")
    job = wait_for_job(job.id, timeout=240)

    assert_complete(job, failure_report(job.id))
    chunk = JobChunk.objects.get(id=orphaned[0])
    assert chunk.attempts == 2 and chunk.error.startswith("worker doomed@")
    assert_no_stale_running_job()


# --- a pool process killed under a live worker ----------------------------------------------------


def test_a_pool_process_killed_under_a_live_worker_loses_nothing(
    alice, minute_dataset, small_chunks, start_worker, start_beat, wait_for_job, failure_report
):
    """The out-of-memory killer's way: one process of the pool dies, the worker lives on and
    keeps beating. Its heartbeat lists the pool's live processes; the chunk held by the dead
    one is given back."""
    import os
    import signal

    start_worker("oom", concurrency=1)
    start_beat()
    job = create_job(alice, minute_dataset, "faults: pool process killed")
    wait_mid_job(job, failure_report)
    victim = JobChunk.objects.filter(job=job, status=JobChunk.Status.RUNNING).first()
    os.kill(victim.pid, signal.SIGKILL)

    recovered = wait_until(
        lambda: JobChunk.objects.filter(id=victim.id, attempts__gte=2).exists(),
        timeout=RECOVERY_SECONDS,
        message=lambda: f"the killed process's chunk waited over 60 s\n{failure_report(job.id)}",
    )
    print(f"\npool process killed: its chunk re-run after {recovered:.1f} s")
    job = wait_for_job(job.id, timeout=240)

    assert_complete(job, failure_report(job.id))
    chunk = JobChunk.objects.get(id=victim.id)
    assert (
        chunk.error
        == f"process {victim.pid} of worker {victim.worker} died (killed, or out of memory)"
    )
    assert_no_stale_running_job()


# --- a chunk whose data vanished ----------------------------------------------------------------


def test_a_chunk_whose_data_vanished_fails_the_job_with_the_reason(
    alice, minute_dataset, small_chunks, start_worker, wait_for_job, failure_report
):
    from apps.market.storage import dataset_path

    start_worker("vanish", concurrency=1)
    dataset_path(minute_dataset.file).unlink()  # before any worker loaded it
    job = create_job(alice, minute_dataset, "faults: data vanished")

    job = wait_for_job(job.id, timeout=60)

    assert job.status == JobStatus.FAILED, failure_report(job.id)
    assert job.error.startswith("chunk "), job.error
    assert minute_dataset.file in job.error
    assert OptimizationRun.objects.filter(job=job).count() == 0
    assert_no_stale_running_job()
    assert JobChunk.objects.filter(job=job, status=JobChunk.Status.FAILED).count() == 1


# --- PostgreSQL connections terminated mid-job -----------------------------------------------


def terminate_other_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return len(cursor.fetchall())


def test_terminated_database_connections_mid_job_do_not_stop_it(
    alice, minute_dataset, small_chunks, start_worker, start_beat, wait_for_job, failure_report
):
    workers = [start_worker("pg-a", concurrency=1), start_worker("pg-b", concurrency=1)]
    start_beat()
    job = create_job(alice, minute_dataset, "faults: pg_terminate_backend")
    terminated = 0
    for share in (0.25, 0.5, 0.75):
        wait_until(
            lambda share=share: done_runs(job.id) >= TOTAL * share,
            timeout=180,
            message=lambda: failure_report(job.id),
        )
        before = done_runs(job.id)
        terminated += terminate_other_connections()
        resumed = wait_until(
            lambda before=before: done_runs(job.id) > before,
            timeout=RECOVERY_SECONDS,
            message=lambda: f"no progress within 60 s\n{failure_report(job.id)}",
        )
        print(f"\nconnections terminated at {share:.0%}: progress again after {resumed:.1f} s")
    assert terminated >= 2, "no worker connection was there to terminate"

    job = wait_for_job(job.id, timeout=240)

    assert_complete(job, failure_report(job.id))
    assert_no_stale_running_job()
    assert all(w.running for w in workers)


# --- cancel, then restart the workers ----------------------------------------------------------


def test_a_job_cancelled_mid_way_stays_cancelled_across_a_worker_restart(
    alice, minute_dataset, small_chunks, fast_reaper, start_worker, failure_report
):
    first = start_worker("cancel", concurrency=1, env=FAST_REAPER)
    job = create_job(alice, minute_dataset, "faults: cancel then restart")
    wait_until(
        lambda: done_runs(job.id) >= TOTAL * 0.2,
        timeout=180,
        message=lambda: failure_report(job.id),
    )

    job_cancel(job=job)
    runs_at_cancel = OptimizationRun.objects.filter(job=job).count()
    assert 0 < runs_at_cancel < TOTAL

    first.stop()  # warm shutdown: a chunk in flight finishes, finds its claim gone, stores nothing
    second = start_worker("cancel", concurrency=1, env=FAST_REAPER)  # start-up recovery + reap
    chunk_ids = list(JobChunk.objects.filter(job=job).values_list("id", flat=True))
    chunks_enqueue(chunk_ids)  # every message delivered again after the restart
    wait_until(
        lambda: len(logged_results([second])) >= len(chunk_ids),
        timeout=60,
        message=lambda: failure_report(job.id),
    )
    chunks_reap()

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED, failure_report(job.id)
    assert set(logged_results([second])) == {"skipped"}
    assert OptimizationRun.objects.filter(job=job).count() == runs_at_cancel
    assert job.done_runs == runs_at_cancel
    assert not JobChunk.objects.filter(
        job=job, status__in=[JobChunk.Status.PENDING, JobChunk.Status.RUNNING]
    ).exists()


# --- backtests that raise ----------------------------------------------------------------------


@pytest.fixture
def faulty_strategy():
    from backtestlab.engine.strategies import STRATEGIES, register
    from tests.integration import fault_strategies

    if fault_strategies.FaultySma.key not in STRATEGIES:
        register(fault_strategies.FAULTY)
    yield fault_strategies
    STRATEGIES.pop(fault_strategies.FaultySma.key, None)


GRID_12 = {"fast": [5, 10, 20], "slow": [50, 100], "sl_pct": [1.0, 2.0], "rr": [2.0]}


@pytest.mark.parametrize(
    "tolerance, status", [("0", JobStatus.FAILED), ("0.5", JobStatus.SUCCEEDED)]
)
def test_backtests_that_raise_are_failed_runs_and_the_tolerance_decides(
    alice,
    settings,
    hourly_datasets,
    faulty_strategy,
    start_worker,
    wait_for_job,
    failure_report,
    tolerance,
    status,
):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "CHUNK_SIZE": 5}  # 3 chunks, 2 with failures
    env = {"BACKTESTLAB_FAILURE_TOLERANCE": tolerance}
    start_worker("faulty", concurrency=2, env=env, include=[FAULT_MODULE])
    job = job_create(
        user=alice,
        name=f"faults: raising backtests, tolerance {tolerance}",
        strategy=faulty_strategy.FaultySma.key,
        dataset_ids=[hourly_datasets[0].id],
        parameter_grid=GRID_12,
    )

    job = wait_for_job(job.id, timeout=120)

    report = failure_report(job.id)
    assert job.status == status, report
    assert (job.completed_runs, job.failed_runs, job.progress_pct) == (8, 4, 100.0), report
    failed = OptimizationRun.objects.filter(job=job, status=OptimizationRun.Status.FAILED)
    assert {r.params["fast"] for r in failed} == {faulty_strategy.CURSED_FAST}
    assert all(faulty_strategy.MESSAGE in r.error for r in failed)
    assert OptimizationRun.objects.filter(job=job).count() == 12
    if status == JobStatus.FAILED:
        assert "4 of 12 runs failed" in job.error and faulty_strategy.MESSAGE in job.error
    assert_no_stale_running_job()
