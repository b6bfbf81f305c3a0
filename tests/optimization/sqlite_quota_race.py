"""Run by ``test_quotas.py`` in a fresh process: N threads create jobs for one user at once on
the embedded default, a SQLite file in WAL mode (the test database is in memory, where
SQLite locks differently).

The main thread holds the write lock (``BEGIN IMMEDIATE``) while the threads start, so each of
them has validated its request, passed the early quota check and is waiting to begin its
transaction when the lock is released. Prints one JSON object: each creation's outcome (a job
id, or ``[status, message]``) and the rows stored.

Usage: ``python -m tests.optimization.sqlite_quota_race N`` with ``BACKTESTLAB_VAR_DIR`` set.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import django


def main(n: int) -> None:
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from apps.market.models import Dataset
    from apps.market.services import synthetic_universe_create
    from apps.optimization.models import JobChunk, OptimizationJob
    from apps.optimization.services.jobs import job_create
    from backtestlab.errors import ApplicationError

    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    # Waiting threads queue for the write lock; each may wait for all the others.
    settings.DATABASES["default"]["OPTIONS"]["timeout"] = 60
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("alice")
    synthetic_universe_create(symbols=("BTC",), days=30, timeframes=("1h",))
    dataset = Dataset.objects.get(kind=Dataset.Kind.CANDLES)
    outcomes: list = []

    def create() -> None:
        try:
            job = job_create(
                user=user,
                name="racing",
                strategy="sma_cross",
                dataset_ids=[dataset.id],
                parameter_grid={"fast": [5, 10]},
            )
            outcomes.append(job.id)
        except ApplicationError as exc:
            outcomes.append([exc.status, exc.message])
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(n)]
    with transaction.atomic():  # BEGIN IMMEDIATE: the write lock, until every thread waits
        for thread in threads:
            thread.start()
        time.sleep(2)
    for thread in threads:
        thread.join(120)
    result = {
        "outcomes": outcomes,
        "jobs": list(OptimizationJob.objects.values_list("id", flat=True)),
        "chunks": JobChunk.objects.count(),
        "dataset_links": OptimizationJob.datasets.through.objects.count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(int(sys.argv[1]))
