"""Celery tasks: thin interfaces that take ids and call one service; and the worker's heartbeat."""

from __future__ import annotations

import logging
import os
import socket
import threading

from billiard.exceptions import TimeLimitExceeded
from celery import shared_task
from celery.signals import task_failure, worker_ready, worker_shutdown
from django.db import connection

from apps.optimization.queue import FIRE_TEMPLATE, REAP, RECOVERY_QUEUE, RUN_CHUNK
from apps.optimization.services.execution import (
    TRANSIENT_ERRORS,
    chunk_execute,
    chunk_give_up_held,
    chunk_release,
    chunks_reap,
    chunks_recover_worker,
    error_text,
    worker_beat,
    worker_gone,
)
from apps.optimization.services.schedules import template_fire
from apps.optimization.services.validation import setting

log = logging.getLogger(__name__)

RETRY_BACKOFF_CAP = 10  # seconds; REQUEUE_PENDING_SECONDS must exceed it (settings)


def _drop_connection() -> None:
    """Close a connection the database dropped, so the next query opens a fresh one."""
    if not connection.in_atomic_block:
        connection.close()


@shared_task(name=RUN_CHUNK, bind=True, acks_late=True, max_retries=None)
def run_chunk(self, chunk_id: int) -> str:
    """Run one chunk. A deterministic error fails the chunk and its job at once (the service
    does it); a database that went away mid-chunk (restart, failover, ``pg_terminate_backend``)
    gets the chunk back and the task retried with backoff on the recovery queue, until the
    chunk's CHUNK_MAX_ATTEMPTS are spent (then its next claim fails it and the job).

    Without the release the retry would find the chunk RUNNING and skip it, and the job would
    wait for the reaper.
    """
    worker = self.request.hostname or ""
    try:
        if self.request.retries:
            # The failed attempt could not give its chunk back while the database was away.
            chunk_release(chunk_id=chunk_id, worker=worker)
        return chunk_execute(chunk_id=chunk_id, worker=worker)
    except TRANSIENT_ERRORS as exc:
        _drop_connection()
        try:
            chunk_release(chunk_id=chunk_id, worker=worker, error=error_text(exc))
        except TRANSIENT_ERRORS:
            _drop_connection()  # still away: the retry releases it first
        countdown = min(2**self.request.retries, RETRY_BACKOFF_CAP)
        raise self.retry(exc=exc, countdown=countdown, queue=RECOVERY_QUEUE) from exc


@task_failure.connect(sender=run_chunk)
def chunk_killed_by_time_limit(sender=None, exception=None, args=None, **kwargs):
    """In the worker's main process: the hard time limit killed a chunk's process. Another
    attempt would be killed the same way, so the chunk and its job fail now."""
    if not isinstance(exception, TimeLimitExceeded) or not args:
        return
    limit = getattr(exception, "args", ("?",))[0]
    try:
        chunk_give_up_held(
            chunk_id=int(args[0]),
            error=(
                f"killed by the hard time limit ({limit} s, CELERY_TASK_TIME_LIMIT); lower "
                "BACKTESTLAB_CHUNK_SIZE or raise the limit"
            ),
        )
    except Exception:  # the reaper still ends it (STALE_CHUNK_SECONDS, then the attempt cap)
        log.exception("could not fail chunk %s after its time limit", args[0])


@shared_task(name=REAP, ignore_result=True)
def reap() -> dict:
    return chunks_reap()


@shared_task(name=FIRE_TEMPLATE, ignore_result=True)
def fire_template(template_id: int) -> int | None:
    """Beat's entry for a JobTemplate: one job per scheduled slot."""
    firing = template_fire(template_id=template_id)
    return firing.job_id if firing else None


class Heartbeat(threading.Thread):
    """Writes this worker's heartbeat every WORKER_HEARTBEAT_SECONDS from its main process
    (which stays alive and responsive while pool processes compute)."""

    def __init__(self, name: str, concurrency: int | None, pool=None):
        super().__init__(name=f"heartbeat {name}", daemon=True)
        self.node = name
        self.concurrency = concurrency
        self.pool = pool
        self.stopped = threading.Event()

    def pool_pids(self) -> list[int]:
        """The prefork pool's live processes (none listed for other pools: not checked)."""
        processes = getattr(getattr(self.pool, "_pool", None), "_pool", None) or []
        return [p.pid for p in list(processes) if getattr(p, "pid", None)]

    def beat(self) -> None:
        try:
            worker_beat(
                name=self.node,
                host=socket.gethostname(),
                pid=os.getpid(),
                concurrency=self.concurrency,
                pids=self.pool_pids(),
            )
        except Exception as exc:  # the database is away: the next beat tries again
            log.warning("heartbeat of %s failed: %r", self.node, exc)
            connection.close()

    def run(self) -> None:
        interval = float(setting("WORKER_HEARTBEAT_SECONDS"))
        while not self.stopped.wait(interval):
            self.beat()
        connection.close()


_heartbeat: Heartbeat | None = None


@worker_ready.connect
def recover_on_worker_start(sender=None, **kwargs):
    """A worker starts beating, then re-queues its own chunks (it was killed), then reaps."""
    global _heartbeat
    hostname = getattr(sender, "hostname", "") or ""
    if hostname:
        controller = getattr(sender, "controller", None)
        concurrency = getattr(controller, "concurrency", None)
        _heartbeat = Heartbeat(
            hostname,
            concurrency if isinstance(concurrency, int) else None,
            getattr(controller, "pool", None),
        )
        _heartbeat.beat()
        _heartbeat.start()
    try:
        recovered = chunks_recover_worker(worker=hostname) if hostname else 0
        reaped = chunks_reap()
    except Exception:  # the worker must still start; the beat reaper retries
        log.exception("start-up recovery failed")
        return
    log.info(
        "start-up recovery on %s: re-queued %s own chunks, reaper %s", hostname, recovered, reaped
    )


@worker_shutdown.connect
def say_goodbye(sender=None, **kwargs):
    """A clean shutdown: stop beating and remove the heartbeat row (nothing left RUNNING)."""
    if _heartbeat is None:
        return
    _heartbeat.stopped.set()
    try:
        worker_gone(name=_heartbeat.node)
    except Exception:  # the row just ages: the worker reads as dead, which it is
        log.warning("could not remove the heartbeat of %s", _heartbeat.node)
