"""Apply and scheduled sweeps on PostgreSQL, with real concurrency (threads, own connections).

- Two applies based on the same version: one new version, one 409, one audit row.
- A JobTemplate's real django-celery-beat entry fired twice for the same slot, in sequence and
  from two threads at once: one job.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import JobTemplate, OptimizationJob, TemplateFiring
from apps.optimization.services.schedules import template_fire, template_schedule_ensure
from apps.optimization.tasks import fire_template
from apps.strategies.models import ParameterChange, StrategyConfig
from apps.strategies.services.apply import run_apply_to_production
from backtestlab.errors import ApplicationError
from tests.factories import SMALL_GRID, make_job, run_all_chunks
from tests.strategies.conftest import approve, grant, ranked


@pytest.fixture
def btc(transactional_db):
    synthetic_universe_create(symbols=("BTC",), days=60, timeframes=("1h",))
    return Dataset.objects.get(kind=Dataset.Kind.CANDLES)


def _race(n: int, body) -> list:
    barrier = threading.Barrier(n)
    outcomes: list = []

    def run(i):
        try:
            barrier.wait(timeout=20)
            outcomes.append(body(i))
        except ApplicationError as exc:
            outcomes.append(exc.status)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def test_two_concurrent_applies_give_one_version_and_one_409(alice, btc):
    alice = grant(alice)
    job = make_job(alice, [btc])
    run_all_chunks(job)
    runs = ranked(job)
    StrategyConfig.objects.create(
        strategy="sma_cross", symbol="BTC", timeframe="1h", version=1, params=runs[-1].params
    )
    approve("PILOT")

    def apply(i):
        run_apply_to_production(
            run=runs[i], user=alice, dry_run=False, expected_version=1, min_improvement_pct=-1e9
        )
        return 200

    assert sorted(_race(2, apply)) == [200, 409]
    assert StrategyConfig.objects.filter(version=2).count() == 1
    assert StrategyConfig.objects.count() == 2 and ParameterChange.objects.count() == 1


def test_a_real_beat_entry_fired_twice_for_one_slot_creates_one_job(alice, btc):
    from django_celery_beat.schedulers import DatabaseScheduler

    from backtestlab.celery import app

    template = JobTemplate.objects.create(
        name="weekly", strategy="sma_cross", parameter_grid=SMALL_GRID, owner=alice
    )
    template.datasets.set([btc])
    task = template_schedule_ensure(template)
    # The entry beat's DatabaseScheduler builds from the row (its all_as_schedule() leaves out
    # crontabs not due within the hour, so the entry is built directly).
    entry = DatabaseScheduler.Entry(task, app=app)
    assert entry.task == "apps.optimization.tasks.fire_template" and list(entry.args) == [
        template.id
    ]
    assert (entry.schedule.hour, entry.schedule.day_of_week) == ({2}, {0})

    fire_template(template.id)  # the task body, as beat's message runs it
    fire_template(template.id)
    assert OptimizationJob.objects.count() == 1

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)  # next week's slot, two at once
    ids = _race(2, lambda i: template_fire(template_id=template.id, now=later).job_id)
    assert len(set(ids)) == 1 and None not in ids
    assert OptimizationJob.objects.count() == 2 and TemplateFiring.objects.count() == 2
