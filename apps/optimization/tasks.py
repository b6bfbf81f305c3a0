"""Celery tasks: thin interfaces that take ids and call one service."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.db import InterfaceError, OperationalError, connection

from apps.optimization.queue import FIRE_TEMPLATE, REAP, RUN_CHUNK
from apps.optimization.services.execution import (
    chunk_execute,
    chunk_release,
    chunks_reap,
    chunks_recover_worker,
)
from apps.optimization.services.schedules import template_fire

log = logging.getLogger(__name__)

DB_ERRORS = (OperationalError, InterfaceError)


def _drop_connection() -> None:
    """Close a connection the database dropped, so the next query opens a fresh one."""
    if not connection.in_atomic_block:
        connection.close()


@shared_task(name=RUN_CHUNK, bind=True, acks_late=True, max_retries=8)
def run_chunk(self, chunk_id: int) -> str:
    """Run one chunk; a database that went away mid-chunk (restart, failover,
    ``pg_terminate_backend``) gets the chunk back and the task retried with backoff.

    Without the release the retry would find the chunk RUNNING and skip it, and the job would
    wait for the reaper's STALE_CHUNK_SECONDS. Past ``max_retries`` the reaper re-queues it.
    """
    worker = self.request.hostname or ""
    try:
        if self.request.retries:
            # The failed attempt could not give its chunk back while the database was away.
            chunk_release(chunk_id=chunk_id, worker=worker)
        return chunk_execute(chunk_id=chunk_id, worker=worker)
    except DB_ERRORS as exc:
        _drop_connection()
        try:
            chunk_release(chunk_id=chunk_id, worker=worker)
        except DB_ERRORS:
            _drop_connection()  # still away: the retry releases it first
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 30)) from exc


@shared_task(name=REAP, ignore_result=True)
def reap() -> dict:
    return chunks_reap()


@shared_task(name=FIRE_TEMPLATE, ignore_result=True)
def fire_template(template_id: int) -> int | None:
    """Beat's entry for a JobTemplate: one job per scheduled slot."""
    firing = template_fire(template_id=template_id)
    return firing.job_id if firing else None


@worker_ready.connect
def recover_on_worker_start(sender=None, **kwargs):
    """A worker that was killed comes back and re-queues its own chunks, then reaps."""
    hostname = getattr(sender, "hostname", "") or ""
    try:
        recovered = chunks_recover_worker(worker=hostname) if hostname else 0
        reaped = chunks_reap()
    except Exception:  # the worker must still start; the beat reaper retries
        log.exception("start-up recovery failed")
        return
    log.info(
        "start-up recovery on %s: re-queued %s own chunks, reaper %s", hostname, recovered, reaped
    )
