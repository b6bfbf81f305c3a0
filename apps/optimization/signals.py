"""Worker start-up recovery: a worker that was killed comes back and re-queues its own chunks."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

log = logging.getLogger(__name__)


@worker_ready.connect
def recover_on_worker_start(sender=None, **kwargs):
    from apps.optimization.services import chunks_reap, chunks_recover_worker

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
