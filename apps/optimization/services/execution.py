"""What a worker does with a chunk, and the repairs that make lost work harmless.

A worker claims a chunk with a conditional UPDATE, runs its backtests outside any transaction
and then, in one short transaction, marks the chunk done (only if it still holds the claim),
inserts the runs and advances the job's counters. The worker that brings ``chunks_remaining``
to zero finalizes the job; the reaper repairs whatever a lost worker or broker message left.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.optimization.models import (
    ACTIVE_STATUSES,
    JobChunk,
    JobStatus,
    OptimizationJob,
    OptimizationRun,
)
from apps.optimization.queue import chunks_enqueue
from apps.optimization.services.job_kinds import ChunkOutput, job_kind
from apps.optimization.services.validation import setting
from apps.optimization.signals import job_finished

log = logging.getLogger(__name__)


class _ClaimLost(Exception):
    """The chunk was re-queued, cancelled or finished by someone else while we computed."""


@dataclass(frozen=True)
class ChunkClaim:
    """A worker's claim on a chunk: only the holder of ``token`` may commit the chunk."""

    chunk: JobChunk  # with its job and dataset loaded
    token: uuid.UUID


def chunk_claim(*, chunk_id: int, worker: str = "") -> ChunkClaim | None:
    """Claim a PENDING chunk of an active job (a conditional UPDATE); None if not claimable."""
    token = uuid.uuid4()
    now = timezone.now()
    claimed = JobChunk.objects.filter(
        id=chunk_id, status=JobChunk.Status.PENDING, job__status__in=ACTIVE_STATUSES
    ).update(
        status=JobChunk.Status.RUNNING,
        claim_token=token,
        worker=worker[:200],
        claimed_at=now,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    chunk = JobChunk.objects.select_related("job", "dataset").get(id=chunk_id)
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
    (claim lost meanwhile).
    """
    claim = chunk_claim(chunk_id=chunk_id, worker=worker)
    if claim is None:
        return "skipped"
    remaining = chunk_commit(claim=claim, work=chunk_work(claim=claim))
    if remaining is None:
        return "lost"
    if remaining == 0:  # pragma: no mutate: GtE, LtE
        job_finalize(job_id=claim.chunk.job_id)
    return "done"


def job_finalize(*, job_id: int) -> bool:
    """Record the outcome and the final status, exactly once (a conditional UPDATE); then
    announce ``job_finished`` (once, by the caller that won the UPDATE)."""
    job = OptimizationJob.objects.filter(
        id=job_id, status=JobStatus.RUNNING, chunks_remaining=0
    ).first()
    if job is None:  # not running, or chunks left: nothing to finalize (yet)
        return False
    finish = job_kind(job).finish(job)
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
        answers = job_finished.send_robust(sender=OptimizationJob, job_id=job_id)
        for receiver, answer in answers:
            if isinstance(answer, Exception):
                log.error("job_finished receiver %r failed on job %s: %r", receiver, job_id, answer)
    return finalized


def chunks_reap(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Repair what lost workers and lost broker messages leave behind.

    - RUNNING chunks claimed longer ago than STALE_CHUNK_SECONDS (past any task time limit, so
      their worker is gone) go back to PENDING and are enqueued again;
    - PENDING chunks of a job that has made no progress for REQUEUE_PENDING_SECONDS are enqueued
      again (their message may have died with the broker); duplicates are harmless;
    - RUNNING jobs with no chunk left are finalized.
    """
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=setting("STALE_CHUNK_SECONDS"))
    requeue_before = now - dt.timedelta(seconds=setting("REQUEUE_PENDING_SECONDS"))
    stale = list(
        JobChunk.objects.filter(
            status=JobChunk.Status.RUNNING, claimed_at__lt=stale_before
        ).values_list("id", flat=True)
    )
    reset = JobChunk.objects.filter(id__in=stale, status=JobChunk.Status.RUNNING).update(
        status=JobChunk.Status.PENDING, claim_token=None, worker="", enqueued_at=now
    )
    pending = list(
        JobChunk.objects.filter(
            status=JobChunk.Status.PENDING,
            job__status__in=ACTIVE_STATUSES,
            enqueued_at__lt=requeue_before,
        )
        .exclude(job__heartbeat_at__gte=requeue_before)
        .values_list("id", flat=True)
    )
    JobChunk.objects.filter(id__in=pending).update(enqueued_at=now)
    to_enqueue = sorted(set(stale) | set(pending))
    if to_enqueue:
        chunks_enqueue(to_enqueue)
    finalized = 0
    for job_id in OptimizationJob.objects.filter(
        status=JobStatus.RUNNING, chunks_remaining=0
    ).values_list("id", flat=True):
        finalized += job_finalize(job_id=job_id)
    return {"reset": reset, "requeued": len(pending), "finalized": finalized}


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
        status=JobChunk.Status.PENDING, claim_token=None, worker="", enqueued_at=timezone.now()
    )
    chunks_enqueue(ids)
    return len(ids)


def chunk_release(*, chunk_id: int, worker: str) -> bool:
    """Give back a chunk this worker holds (its task died on a database error, to be retried).

    Claims are exclusive, so a RUNNING chunk with this worker's name is the one the failed
    attempt held; if another process of the same worker held it instead, that one's claim is
    lost and it stores nothing, so the chunk still runs exactly once.
    """
    return bool(
        JobChunk.objects.filter(id=chunk_id, worker=worker, status=JobChunk.Status.RUNNING).update(
            status=JobChunk.Status.PENDING, claim_token=None, worker="", enqueued_at=timezone.now()
        )
    )
