"""A Monte Carlo job through a real celery worker on PostgreSQL and Redis."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.optimization.models import JobStatus
from apps.optimization.services.jobs import job_create
from apps.optimization.services.monte_carlo import monte_carlo_job_create
from backtestlab.engine.evaluation import monte_carlo as mc

pytestmark = pytest.mark.django_db(transaction=True)

GRID = {"fast": [5, 10], "slow": [30, 60], "sl_pct": [2.0], "rr": [2.0]}


def test_a_monte_carlo_job_runs_on_a_real_worker(hourly_datasets, start_worker, wait_for_job):
    user = get_user_model().objects.create_user("mc-owner", password="pw-123456789")
    start_worker("w1", concurrency=2)
    sweep = job_create(
        user=user, name="mc source", strategy="sma_cross",
        dataset_ids=[hourly_datasets[0].id], parameter_grid=GRID,
    )  # fmt: skip
    sweep = wait_for_job(sweep.id)
    assert sweep.status == JobStatus.SUCCEEDED, sweep.error
    job = monte_carlo_job_create(
        user=user, run=sweep.best_run, sims=5000, trades_per_sim=200, seed=123
    )
    assert job.chunks.count() == 5
    job = wait_for_job(job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.completed_runs == 5000 and job.progress_pct == 100.0
    engine = mc.run_monte_carlo(job.options["returns"], sims=5000, trades_per_sim=200, seed=123)
    assert job.evaluation["profile"] == pytest.approx(engine.profile.as_dict())
    assert job.evaluation["bands"]["5"] == pytest.approx(engine.bands[5])
    sweep.refresh_from_db()
    assert sweep.evaluation["overfitting"]["n_trials"] == 4
