"""Per-user limits: jobs per minute and jobs active at once answer 429 and write nothing."""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.optimization.models import OptimizationJob
from apps.optimization.services.jobs import job_cancel, job_copy
from backtestlab.errors import ApplicationError
from tests.factories import make_job

pytestmark = pytest.mark.django_db


def test_too_many_active_jobs_are_refused_with_429(alice, bob, datasets, settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "MAX_ACTIVE_JOBS_PER_USER": 2}
    first = make_job(alice, datasets[:1], name="one")
    make_job(alice, datasets[:1], name="two")
    with pytest.raises(ApplicationError) as err:
        make_job(alice, datasets[:1], name="three")
    assert err.value.status == 429 and "limit 2" in err.value.message
    assert OptimizationJob.objects.count() == 2
    make_job(bob, datasets[:1], name="bob's own")  # the limit is per user
    job_cancel(job=first)
    make_job(alice, datasets[:1], name="three, after a cancel")
    assert OptimizationJob.objects.filter(created_by=alice).count() == 3


def test_job_creation_is_rate_limited_on_the_api(alice, datasets, settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "JOBS_PER_MINUTE": 2}
    client = APIClient()
    client.force_authenticate(alice)
    body = {
        "name": "x",
        "strategy": "sma_cross",
        "datasets": [datasets[0].id],
        "parameter_grid": {"fast": [5]},
    }
    statuses = [client.post("/api/jobs/", body, format="json").status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    last = client.post("/api/jobs/", body, format="json").json()
    assert last["ok"] is False and "last minute" in last["error"]
    assert OptimizationJob.objects.count() == 2


def test_a_rerun_counts_against_the_quota(alice, datasets, settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "MAX_ACTIVE_JOBS_PER_USER": 1}
    job = make_job(alice, datasets[:1])
    with pytest.raises(ApplicationError):
        job_copy(job=job, user=alice, start=True, rerun=True)
    job_copy(job=job, user=alice, start=False)  # a duplicate does not run
    assert OptimizationJob.objects.count() == 2


def test_an_oversized_body_gets_413_and_writes_nothing(alice, datasets, settings, client):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    api = APIClient()
    api.force_authenticate(alice)
    body = {
        "name": "x",
        "strategy": "sma_cross",
        "datasets": [datasets[0].id],
        "parameter_grid": {"sl_pct": [1.0 + i / 10_000 for i in range(5_000)]},
    }
    response = api.post("/api/jobs/", body, format="json")
    assert response.status_code == 413
    assert response.json()["ok"] is False and "larger than the limit" in response.json()["error"]
    client.force_login(alice)
    page = client.post("/lab/jobs/new/", {"name": "y" * 20_000})
    assert page.status_code == 413 and page["Content-Type"].startswith("text/plain")
    assert "larger than the limit of 10000 bytes" in page.content.decode()
    assert OptimizationJob.objects.count() == 0


def test_concurrent_creations_on_the_embedded_sqlite_never_exceed_the_quota(tmp_path):
    """6 creations at once, limit 2: SQLite's IMMEDIATE transactions serialize them, and the
    check inside the creating transaction counts what the previous one committed."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update(
        DEBUG="1",
        BACKTESTLAB_VAR_DIR=str(tmp_path),
        BACKTESTLAB_MAX_ACTIVE_JOBS_PER_USER="2",
        DJANGO_SETTINGS_MODULE="backtestlab.settings",
    )
    out = subprocess.run(
        [sys.executable, "-m", "tests.optimization.sqlite_quota_race", "6"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    created = [o for o in result["outcomes"] if isinstance(o, int)]
    refused = [o for o in result["outcomes"] if not isinstance(o, int)]
    assert len(created) == 2 and len(refused) == 4, result
    for status, message in refused:
        assert status == 429 and message.startswith("you have 2 jobs pending or running (limit 2)")
    assert sorted(result["jobs"]) == sorted(created)
    assert result["chunks"] == 2 and result["dataset_links"] == 2


@pytest.mark.parametrize("age_seconds, counted", [(50, True), (70, False)])
def test_the_rate_limit_counts_the_jobs_of_the_last_minute_only(
    alice, datasets, settings, age_seconds, counted
):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "JOBS_PER_MINUTE": 1}
    earlier = make_job(alice, datasets[:1], name="earlier", start=False)
    OptimizationJob.objects.filter(id=earlier.id).update(
        created_at=timezone.now() - dt.timedelta(seconds=age_seconds)
    )
    if counted:
        with pytest.raises(ApplicationError) as err:
            make_job(alice, datasets[:1], name="now")
        assert err.value.status == 429
        assert err.value.message.startswith("you created 1 jobs in the last minute (limit 1)")
        assert OptimizationJob.objects.count() == 1
    else:
        make_job(alice, datasets[:1], name="now")
        assert OptimizationJob.objects.count() == 2


def test_jobs_without_a_user_are_not_limited(datasets, settings):
    """A command (bench) creates jobs with no user: no person's quota to count them against."""
    settings.BACKTESTLAB = {
        **settings.BACKTESTLAB,
        "JOBS_PER_MINUTE": 1,
        "MAX_ACTIVE_JOBS_PER_USER": 1,
    }
    for i in range(3):
        make_job(None, datasets[:1], name=f"bench {i}")
    assert OptimizationJob.objects.filter(created_by=None).count() == 3


def test_a_user_already_over_a_lowered_limit_is_refused(alice, datasets, settings):
    """Limits can be lowered while jobs exist (and a duplicate is made without a check)."""
    for i in range(2):
        make_job(alice, datasets[:1], name=f"before {i}")
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "MAX_ACTIVE_JOBS_PER_USER": 1}
    with pytest.raises(ApplicationError) as err:
        make_job(alice, datasets[:1], name="after")
    assert err.value.status == 429
    assert err.value.message.startswith("you have 2 jobs pending or running (limit 1)")
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "JOBS_PER_MINUTE": 1}
    with pytest.raises(ApplicationError) as err:
        make_job(alice, datasets[:1], name="after")
    assert err.value.message.startswith("you created 2 jobs in the last minute (limit 1)")
    assert OptimizationJob.objects.count() == 2
