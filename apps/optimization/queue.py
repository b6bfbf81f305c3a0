"""Putting work on the broker: the task names, and enqueueing chunks by name.

Services enqueue by task name so that they never import the task modules that call them.
"""

from __future__ import annotations

from collections.abc import Sequence

from backtestlab.celery import app

RUN_CHUNK = "apps.optimization.tasks.run_chunk"
REAP = "apps.optimization.tasks.reap"
FIRE_TEMPLATE = "apps.optimization.tasks.fire_template"


def chunks_enqueue(chunk_ids: Sequence[int]) -> None:
    """One ``run_chunk`` message per chunk; a duplicate message is harmless (claims are atomic)."""
    for chunk_id in chunk_ids:
        app.send_task(RUN_CHUNK, args=[chunk_id])
