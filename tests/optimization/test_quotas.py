"""Per-user limits: jobs per minute and jobs active at once answer 429 and write nothing."""

import pytest
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
    assert page.status_code == 413
    assert OptimizationJob.objects.count() == 0
