"""What a worker does with a chunk, and the repairs that make lost work harmless.

A worker claims a chunk with a conditional UPDATE, runs its backtests outside any transaction
and then, in one short transaction, marks the chunk done (only if it still holds the claim),
inserts the runs and advances the job's counters. The worker that brings ``chunks_remaining``
to zero finalizes the job; the reaper repairs whatever a lost worker or broker message left.

Every job ends. An error outside the per-run isolation is either *transient* (the database
went away: ``TRANSIENT_ERRORS``; the task gives the chunk back and retries it) or
*deterministic* (anything else: the chunk is FAILED with the error and the job FAILED at once
with a message naming the chunk). A chunk is attempted at most CHUNK_MAX_ATTEMPTS times, however
its attempts end (errors, killed workers, the hard time limit): then it and its job fail.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from dataclasses import dataclass

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from apps.optimization.models import (
    ACTIVE_STATUSES,
    JobChunk,
    JobStatus,
    OptimizationJob,
    OptimizationRun,
    Worker,
)
from apps.optimization.queue import chunk_messages_queued, chunks_enqueue
from apps.optimization.services.job_kinds import ChunkOutput, job_kind
from apps.optimization.services.validation import setting
from apps.optimization.signals import job_finished

log = logging.getLogger(__name__)

# A heartbeat lists the pool processes alive when it was taken, a moment before it is stored:
# only a claim older than the heartbeat by this much is checked against the list.
PID_MARGIN_SECONDS = 2

# The database went away (restart, failover, ``pg_terminate_backend``): worth another attempt.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)

# What some errors mean to an operator (by class name: the services never import Celery).
_HINTS = {
    "SoftTimeLimitExceeded": "the chunk took longer than the task time limit "
    "(CELERY_TASK_SOFT_TIME_LIMIT); lower BACKTESTLAB_CHUNK_SIZE or raise the limit",
    "MemoryError": "the worker ran out of memory; lower BACKTESTLAB_CHUNK_SIZE",
}


def error_text(exc: BaseException) -> str:
    """An exception as an operator reads it: its class, its message, and a hint if we have one."""
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    hint = _HINTS.get(type(exc).__name__)
    return f"{text} ({hint})" if hint else text


def chunk_label(chunk: JobChunk) -> str:
    """``chunk 2 of 3 (BTC 1h, items 5-9)``: which part of the job, for error messages."""
    total = JobChunk.objects.filter(job_id=chunk.job_id).count()
    dataset = chunk.dataset
    return (
        f"chunk {chunk.index + 1} of {total} ({dataset.symbol} {dataset.timeframe}, "
        f"items {chunk.start}-{chunk.stop - 1})"
    )


class _ClaimLost(Exception):
    """The chunk was re-queued, cancelled or finished by someone else while we computed."""


@dataclass(frozen=True)
class ChunkClaim:
    """A worker's claim on a chunk: only the holder of ``token`` may commit the chunk."""

    chunk: JobChunk  # with its job and dataset loaded
    token: uuid.UUID


def chunk_claim(*, chunk_id: int, worker: str = "") -> ChunkClaim | None:
    """Claim a PENDING chunk of an active job; None if not claimable.

    The claim is an UPDATE of the chunk's own row only: under READ COMMITTED a second claimer
    waits for the first one's row lock and then re-checks ``status`` on the row, so exactly one
    wins (a condition on a joined job row would be re-checked by nobody, and a claim waiting
    behind a cancel would bring the cancelled chunk back). The job's status is read first: a
    job that ends (cancel, failure) settles its PENDING chunks in the same transaction, so if it
    ends between the read and the UPDATE the UPDATE finds no PENDING chunk. A chunk out of
    attempts is not run again: it and its job fail, with the chunk's last error.
    """
    if not JobChunk.objects.filter(
        id=chunk_id, status=JobChunk.Status.PENDING, job__status__in=ACTIVE_STATUSES
    ).exists():
        return None
    token = uuid.uuid4()
    now = timezone.now()
    claimed = JobChunk.objects.filter(id=chunk_id, status=JobChunk.Status.PENDING).update(
        status=JobChunk.Status.RUNNING,
        claim_token=token,
        worker=worker[:200],
        pid=os.getpid(),
        claimed_at=now,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    chunk = JobChunk.objects.select_related("job", "dataset").get(id=chunk_id)
    if chunk.attempts > setting("CHUNK_MAX_ATTEMPTS"):
        chunk_give_up(
            chunk=chunk,
            token=token,
            error=f"gave up after {chunk.attempts - 1} attempts; last: {chunk.error or 'n/a'}",
        )
        return None
    OptimizationJob.objects.filter(id=chunk.job_id, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now
    )
    return ChunkClaim(chunk=chunk, token=token)


def chunk_work(*, claim: ChunkClaim) -> ChunkOutput:
    """Run a claimed chunk's backtests (or simulations, folds), outside any transaction."""
    job = claim.chunk.job
    return job_kind(job).compute(job, claim.chunk)


def chunk_commit(*, claim: ChunkClaim, work: ChunkOutput) -> int | None:
    """In one transaction: mark the chunk done, store its output, advance the job's counters.

    Only while the claim still holds (the chunk RUNNING with our token, the job RUNNING):
    a cancel, the reaper or another worker may have taken the chunk meanwhile, and then
    nothing is stored. Returns the job's chunks remaining, or None when the claim was lost.
    """
    chunk = claim.chunk
    try:
        with transaction.atomic():
            done = JobChunk.objects.filter(
                id=chunk.id, status=JobChunk.Status.RUNNING, claim_token=claim.token
            ).update(status=JobChunk.Status.DONE, finished_at=timezone.now(), result=work.result)
            if not done:
                raise _ClaimLost
            advanced = OptimizationJob.objects.filter(
                id=chunk.job_id, status=JobStatus.RUNNING
            ).update(
                completed_runs=F("completed_runs") + (work.units - work.failed),
                failed_runs=F("failed_runs") + work.failed,
                chunks_remaining=F("chunks_remaining") - 1,
                heartbeat_at=timezone.now(),
            )
            if not advanced:
                raise _ClaimLost
            OptimizationRun.objects.bulk_create(work.runs, batch_size=2000)  # pragma: no mutate
            return (
                OptimizationJob.objects.filter(id=chunk.job_id)
                .values_list("chunks_remaining", flat=True)
                .get()
            )
    except _ClaimLost:
        return None


def chunk_execute(*, chunk_id: int, worker: str = "") -> str:
    """Run one chunk; safe to call any number of times, from any number of workers at once.

    Claim, compute outside any transaction, commit; the worker that commits the last chunk
    finalizes the job. Returns what happened: "done", "skipped" (not claimable), "lost"
    (claim lost meanwhile), "failed" (a deterministic error: the chunk and its job failed).
    A transient error (``TRANSIENT_ERRORS``) is raised for the caller to retry.
    """
    claim = chunk_claim(chunk_id=chunk_id, worker=worker)
    if claim is None:
        return "skipped"
    try:
        remaining = chunk_commit(claim=claim, work=chunk_work(claim=claim))
    except TRANSIENT_ERRORS:
        raise  # the task gives the chunk back and retries
    except Exception as exc:  # deterministic: another attempt would fail the same way
        log.exception("chunk %s of job %s failed", chunk_id, claim.chunk.job_id)
        chunk_give_up(chunk=claim.chunk, token=claim.token, error=error_text(exc))
        return "failed"
    if remaining is None:
        return "lost"
    if remaining == 0:  # pragma: no mutate: GtE, LtE
        job_finalize(job_id=claim.chunk.job_id)
    return "done"


def chunk_give_up(*, chunk: JobChunk, error: str, token: uuid.UUID | None = None) -> bool:
    """Fail a chunk (while it is still RUNNING, with ``token`` if given) and its job, with a
    message naming the chunk. False if someone else settled the chunk first."""
    message = f"{chunk_label(chunk)} failed: {error}"
    with transaction.atomic():
        holding = JobChunk.objects.filter(id=chunk.id, status=JobChunk.Status.RUNNING)
        if token is not None:
            holding = holding.filter(claim_token=token)
        if not holding.update(
            status=JobChunk.Status.FAILED, error=error, finished_at=timezone.now()
        ):
            return False
    job_fail(job_id=chunk.job_id, error=message)
    return True


def job_fail(*, job_id: int, error: str) -> bool:
    """End an active job as FAILED with ``error``, at once: its other chunks are cancelled (a
    chunk computing meanwhile stores nothing), then ``job_finished`` is announced. Locks are
    taken chunk rows first, then the job row, like a cancel and a finishing chunk."""
    with transaction.atomic():
        JobChunk.objects.filter(
            job_id=job_id, status__in=[JobChunk.Status.PENDING, JobChunk.Status.RUNNING]
        ).update(status=JobChunk.Status.CANCELLED, claim_token=None)
        failed = OptimizationJob.objects.filter(id=job_id, status__in=ACTIVE_STATUSES).update(
            status=JobStatus.FAILED, error=error, finished_at=timezone.now()
        )
    if failed:
        log.error("job %s failed: %s", job_id, error)
        _announce_finished(job_id)
    return bool(failed)


def _announce_finished(job_id: int) -> None:
    answers = job_finished.send_robust(sender=OptimizationJob, job_id=job_id)
    for receiver, answer in answers:
        if isinstance(answer, Exception):
            log.error("job_finished receiver %r failed on job %s: %r", receiver, job_id, answer)


def job_finalize(*, job_id: int) -> bool:
    """Record the outcome and the final status, exactly once (a conditional UPDATE); then
    announce ``job_finished`` (once, by the caller that won the UPDATE)."""
    job = OptimizationJob.objects.filter(
        id=job_id, status=JobStatus.RUNNING, chunks_remaining=0
    ).first()
    if job is None:  # not running, or chunks left: nothing to finalize (yet)
        return False
    try:
        finish = job_kind(job).finish(job)
    except TRANSIENT_ERRORS:
        raise  # the reaper finalizes it on its next round
    except Exception as exc:  # deterministic: the job must still end
        log.exception("finalizing job %s failed", job_id)
        return job_fail(job_id=job_id, error=f"the job's outcome failed: {error_text(exc)}")
    finalized = bool(
        OptimizationJob.objects.filter(
            id=job_id, status=JobStatus.RUNNING, chunks_remaining=0
        ).update(
            status=JobStatus.FAILED if finish.error else JobStatus.SUCCEEDED,
            best_run=finish.best_run,
            error=finish.error,
            finished_at=timezone.now(),
            **finish.fields,
        )
    )
    if finalized:
        if finish.after is not None:
            finish.after(job_id)
        _announce_finished(job_id)
    return finalized


def chunks_reap(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Repair what lost workers and lost broker messages leave behind (beat runs it every
    REAPER_INTERVAL_SECONDS).

    - RUNNING chunks of a dead worker (its heartbeat is older than WORKER_LOST_SECONDS), or
      claimed longer ago than STALE_CHUNK_SECONDS (past the hard time limit: killed by it, or
      a worker that never sent a heartbeat) go back to PENDING and onto the recovery queue; a
      chunk out of attempts fails with its job instead;
    - PENDING chunks enqueued longer ago than REQUEUE_PENDING_SECONDS are enqueued again when
      the broker holds fewer chunk messages than there are such chunks (messages died with the
      broker); a backlog the broker still holds is left alone. When the broker cannot say, a
      job's pending chunks are enqueued again once it made no progress for that long;
    - RUNNING jobs with no chunk left are finalized.
    """
    now = now or timezone.now()
    lost = _chunks_of_lost_workers(now)
    recovered, failed = [], 0
    for chunk_id, token, attempts, why in lost:
        if attempts >= setting("CHUNK_MAX_ATTEMPTS"):
            chunk = JobChunk.objects.select_related("dataset").get(id=chunk_id)
            failed += chunk_give_up(
                chunk=chunk, token=token, error=f"lost {attempts} times; last: {why}"
            )
            continue
        if JobChunk.objects.filter(
            id=chunk_id, status=JobChunk.Status.RUNNING, claim_token=token
        ).update(
            status=JobChunk.Status.PENDING, claim_token=None, worker="", enqueued_at=now, error=why
        ):
            recovered.append(chunk_id)
    pending = _pending_without_messages(now)
    JobChunk.objects.filter(id__in=pending).update(enqueued_at=now)
    to_enqueue = sorted(set(recovered) | set(pending))
    if to_enqueue:
        chunks_enqueue(to_enqueue, recovered=True)
    finalized = 0
    for job_id in OptimizationJob.objects.filter(
        status=JobStatus.RUNNING, chunks_remaining=0
    ).values_list("id", flat=True):
        finalized += job_finalize(job_id=job_id)
    return {
        "reset": len(recovered),
        "requeued": len(pending),
        "failed": failed,
        "finalized": finalized,
    }


def _chunks_of_lost_workers(now: dt.datetime) -> list[tuple[int, uuid.UUID, int, str]]:
    """(id, claim token, attempts, why) of the RUNNING chunks whose worker, or whose worker's
    pool process, is gone."""
    lost_before = now - dt.timedelta(seconds=setting("WORKER_LOST_SECONDS"))
    stale_before = now - dt.timedelta(seconds=setting("STALE_CHUNK_SECONDS"))
    beats = {name: (seen, pids) for name, seen, pids in Worker.objects.values_list(
        "name", "last_seen", "pids"
    )}  # fmt: skip
    found = []
    for chunk_id, token, attempts, worker, pid, claimed_at in JobChunk.objects.filter(
        status=JobChunk.Status.RUNNING, claimed_at__lt=lost_before
    ).values_list("id", "claim_token", "attempts", "worker", "pid", "claimed_at"):
        last_seen, pids = beats.get(worker, (None, []))
        if last_seen is not None and last_seen < lost_before:
            why = f"worker {worker} stopped (no heartbeat since {last_seen:%Y-%m-%d %H:%M:%S} UTC)"
        elif (
            pids
            and pid not in pids
            and claimed_at < last_seen - dt.timedelta(seconds=PID_MARGIN_SECONDS)
        ):
            why = f"process {pid} of worker {worker} died (killed, or out of memory)"
        elif claimed_at < stale_before:
            why = (
                f"running for more than {setting('STALE_CHUNK_SECONDS')} s on {worker or '?'} "
                "(killed by the task time limit, or its worker is gone)"
            )
        else:
            continue
        found.append((chunk_id, token, attempts, why))
    return found


def _pending_without_messages(now: dt.datetime) -> list[int]:
    """PENDING chunks (of active jobs) whose broker message is presumed lost."""
    before = now - dt.timedelta(seconds=setting("REQUEUE_PENDING_SECONDS"))
    waiting = JobChunk.objects.filter(
        status=JobChunk.Status.PENDING, job__status__in=ACTIVE_STATUSES, enqueued_at__lt=before
    )
    queued = chunk_messages_queued()
    if queued is None:  # the broker cannot say: a job that stopped progressing
        return list(waiting.exclude(job__heartbeat_at__gte=before).values_list("id", flat=True))
    ids = list(waiting.values_list("id", flat=True))
    return ids if queued < len(ids) else []


def chunks_recover_worker(*, worker: str) -> int:
    """At worker start-up: chunks this worker name held when it died go back to the queue."""
    ids = list(
        JobChunk.objects.filter(worker=worker, status=JobChunk.Status.RUNNING).values_list(
            "id", flat=True
        )
    )
    if not ids:
        return 0
    JobChunk.objects.filter(id__in=ids, worker=worker, status=JobChunk.Status.RUNNING).update(
        status=JobChunk.Status.PENDING,
        claim_token=None,
        worker="",
        enqueued_at=timezone.now(),
        error=f"worker {worker} restarted while it ran the chunk",
    )
    chunks_enqueue(ids, recovered=True)
    return len(ids)


def chunk_release(*, chunk_id: int, worker: str, error: str = "") -> bool:
    """Give back a chunk this worker holds (its task died on a transient error, to be retried);
    ``error`` is kept on the chunk.

    Claims are exclusive, so a RUNNING chunk with this worker's name is the one the failed
    attempt held; if another process of the same worker held it instead, that one's claim is
    lost and it stores nothing, so the chunk still runs exactly once.
    """
    fields = {"error": error} if error else {}
    return bool(
        JobChunk.objects.filter(id=chunk_id, worker=worker, status=JobChunk.Status.RUNNING).update(
            status=JobChunk.Status.PENDING,
            claim_token=None,
            worker="",
            enqueued_at=timezone.now(),
            **fields,
        )
    )


def worker_beat(
    *,
    name: str,
    host: str = "",
    pid: int | None = None,
    concurrency: int | None = None,
    pids: list[int] | None = None,
) -> None:
    """A worker's heartbeat: it is alive now, with these pool processes (``tasks.Heartbeat``
    beats every WORKER_HEARTBEAT_SECONDS from each worker's main process)."""
    now = timezone.now()
    fields = {
        "host": host[:200],
        "pid": pid,
        "concurrency": concurrency,
        "pids": sorted(pids or []),
        "last_seen": now,
    }
    Worker.objects.update_or_create(
        name=name[:200], defaults=fields, create_defaults={**fields, "started_at": now}
    )


def worker_gone(*, name: str) -> None:
    """A worker that shuts down cleanly says so (its chunks finished or were given back)."""
    Worker.objects.filter(name=name).delete()


def chunk_give_up_held(*, chunk_id: int, error: str) -> bool:
    """Fail a RUNNING chunk, whoever holds it, and its job (its process was killed by the hard
    time limit: another attempt would be killed the same way)."""
    chunk = (
        JobChunk.objects.select_related("dataset")
        .filter(id=chunk_id, status=JobChunk.Status.RUNNING)
        .first()
    )
    if chunk is None:
        return False
    return chunk_give_up(chunk=chunk, token=chunk.claim_token, error=error)
