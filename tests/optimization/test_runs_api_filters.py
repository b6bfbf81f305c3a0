"""The runs listing refuses an empty or unknown status instead of ignoring it."""

import pytest
from rest_framework.test import APIClient

from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", ["", "done", "SUCCEEDED"])
def test_a_status_filter_that_is_not_succeeded_or_failed_is_a_400_naming_it(
    alice, datasets, status
):
    job = make_job(alice, datasets[:1])
    run_all_chunks(job)
    client = APIClient()
    client.force_authenticate(alice)
    response = client.get(f"/api/jobs/{job.id}/runs/", {"status": status})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "status"
    assert body["error"] == f"status must be succeeded or failed, got {status!r}"


def test_the_succeeded_filter_lists_only_succeeded_runs(alice, datasets):
    job = make_job(alice, datasets[:1])
    run_all_chunks(job)
    client = APIClient()
    client.force_authenticate(alice)
    body = client.get(f"/api/jobs/{job.id}/runs/", {"status": "succeeded"}).json()
    assert body["count"] == job.runs.filter(status="succeeded").count() == 12
    assert {r["status"] for r in body["results"]} == {"succeeded"}
