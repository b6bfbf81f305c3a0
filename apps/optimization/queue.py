"""Putting work on the broker: the task names, the queues, and enqueueing chunks by name.

Services enqueue by task name so that they never import the task modules that call them.

New chunks go to ``CHUNK_QUEUE``; chunks given back (a retry, a dead worker's chunk, a message
the broker lost) go to ``RECOVERY_QUEUE``, which every worker consumes beside it, so they wait
for a worker's next free slot, not behind the whole backlog.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from backtestlab.celery import app

log = logging.getLogger(__name__)

RUN_CHUNK = "apps.optimization.tasks.run_chunk"
REAP = "apps.optimization.tasks.reap"
FIRE_TEMPLATE = "apps.optimization.tasks.fire_template"

CHUNK_QUEUE = "celery"
RECOVERY_QUEUE = "recovered"
CHUNK_QUEUES = (CHUNK_QUEUE, RECOVERY_QUEUE)


def chunks_enqueue(chunk_ids: Sequence[int], *, recovered: bool = False) -> None:
    """One ``run_chunk`` message per chunk; a duplicate message is harmless (claims are atomic)."""
    queue = RECOVERY_QUEUE if recovered else CHUNK_QUEUE
    for chunk_id in chunk_ids:
        app.send_task(RUN_CHUNK, args=[chunk_id], queue=queue)


def chunk_messages_queued() -> int | None:
    """Messages waiting in the chunk queues (not those a worker holds), or None when the
    broker cannot say (unreachable, or a transport without counts)."""
    try:
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            total = 0
            for name in CHUNK_QUEUES:
                # Declared as the workers declare it (declaring is idempotent; a queue that
                # died with the broker comes back empty instead of raising).
                declared = app.amqp.queues[name].bind(channel).queue_declare()
                total += declared.message_count
            return total
    except Exception as exc:  # the reaper falls back on progress; it must not fail
        log.warning("cannot count the queued chunk messages: %r", exc)
        return None
