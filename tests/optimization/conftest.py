"""The broker as the chunk protocol tests see it: the real embedded one (kombu's filesystem
transport in the test session's folder), emptied before each test."""

from __future__ import annotations

import pytest

from apps.optimization.queue import CHUNK_QUEUES, RUN_CHUNK
from backtestlab.celery import app


class Broker:
    """Reads what the code under test put on the chunk queues."""

    def purge(self) -> None:
        with app.connection_for_write() as conn:
            for name in CHUNK_QUEUES:
                app.amqp.queues[name].bind(conn.default_channel).purge()

    def take(self) -> dict[str, list[int]]:
        """The chunk ids waiting on each queue, sorted (the filesystem transport does not keep
        the order of messages sent within the same instant); taking them empties the queues."""
        taken: dict[str, list[int]] = {name: [] for name in CHUNK_QUEUES}
        with app.connection_for_write() as conn:
            for name in CHUNK_QUEUES:
                with conn.SimpleQueue(name, no_ack=True) as queue:
                    while True:
                        try:
                            message = queue.get_nowait()
                        except queue.Empty:
                            break
                        assert message.headers["task"] == RUN_CHUNK
                        args, _kwargs, _embed = message.payload
                        taken[name].append(args[0])
        return {name: sorted(ids) for name, ids in taken.items()}


@pytest.fixture
def broker():
    b = Broker()
    b.purge()
    yield b
    b.purge()
