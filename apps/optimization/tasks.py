"""Celery tasks: thin interfaces that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from apps.optimization import services


@shared_task(name="apps.optimization.tasks.run_chunk", bind=True, acks_late=True)
def run_chunk(self, chunk_id: int) -> str:
    return services.chunk_execute(chunk_id=chunk_id, worker=self.request.hostname or "")


@shared_task(name="apps.optimization.tasks.reap", ignore_result=True)
def reap() -> dict:
    return services.chunks_reap()
