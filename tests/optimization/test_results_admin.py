"""Admin: compare selected jobs in the lab; runs link to their equity page."""

import pytest

from tests.results_data import job_with_runs

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def act(admin_client, jobs):
    return admin_client.post(
        "/admin/optimization/optimizationjob/",
        {"action": "compare", "_selected_action": [j.id for j in jobs]},
    )


def test_the_compare_action_redirects_to_the_compare_page(admin_client, alice, datasets):
    jobs = [job_with_runs(alice, datasets[:1], lambda d, gi, p: {"sharpe": gi}) for _ in "ab"]
    response = act(admin_client, jobs)
    assert response.status_code == 302
    assert response["Location"] == f"/lab/compare/?ids={jobs[0].id},{jobs[1].id}"


def test_the_compare_action_wants_two_to_four_jobs(admin_client, alice, datasets):
    job = job_with_runs(alice, datasets[:1], lambda d, gi, p: {"sharpe": gi})
    response = act(admin_client, [job])
    assert response.status_code == 302  # back to the job list, with the reason
    assert response["Location"] == "/admin/optimization/optimizationjob/"
    page = admin_client.get(response["Location"]).content.decode()
    assert "Select 2 to 4 jobs to compare (1 selected)." in page


def test_runs_link_to_their_lab_page(admin_client, alice, datasets):
    job = job_with_runs(alice, datasets[:1], lambda d, gi, p: {"sharpe": gi})
    html = admin_client.get("/admin/optimization/optimizationrun/").content.decode()
    run = job.runs.first()
    assert f'href="/lab/jobs/{job.id}/runs/{run.id}/"' in html
