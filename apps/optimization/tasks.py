"""Celery tasks: thin interfaces that take ids and call one service."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError, connection

from apps.optimization import services

DB_ERRORS = (OperationalError, InterfaceError)


def _drop_connection() -> None:
    """Close a connection the database dropped, so the next query opens a fresh one."""
    if not connection.in_atomic_block:
        connection.close()


@shared_task(name="apps.optimization.tasks.run_chunk", bind=True, acks_late=True, max_retries=8)
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
            services.chunk_release(chunk_id=chunk_id, worker=worker)
        return services.chunk_execute(chunk_id=chunk_id, worker=worker)
    except DB_ERRORS as exc:
        _drop_connection()
        try:
            services.chunk_release(chunk_id=chunk_id, worker=worker)
        except DB_ERRORS:
            _drop_connection()  # still away: the retry releases it first
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 30)) from exc


@shared_task(name="apps.optimization.tasks.reap", ignore_result=True)
def reap() -> dict:
    return services.chunks_reap()


@shared_task(name="apps.optimization.tasks.fire_template", ignore_result=True)
def fire_template(template_id: int) -> int | None:
    """Beat's entry for a JobTemplate: one job per scheduled slot (see schedules.py)."""
    from apps.optimization.schedules import template_fire

    firing = template_fire(template_id=template_id)
    return firing.job_id if firing else None
