"""Django admin: the job list with badges and progress, the actions, the validated add form."""

import re

import pytest
from django.contrib import admin
from rest_framework.test import APIClient

from apps.optimization.models import JobChunk, JobStatus, OptimizationJob, OptimizationRun
from apps.optimization.services.jobs import job_cancel, job_start
from backtestlab.engine.metrics import METRIC_NAMES
from backtestlab.errors import ApplicationError
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_job_list_shows_a_badge_and_a_progress_bar(admin_client, alice, datasets):
    job = make_job(alice, datasets)
    run_all_chunks(job)
    html = admin_client.get("/admin/optimization/optimizationjob/").content.decode()
    assert "Succeeded" in html and "100.0%" in html
    assert f'href="/lab/jobs/{job.id}/"' in html


def listed_run_ids(admin_client, order: str) -> list[int]:
    """The run ids of the run changelist, top to bottom, sorted by the column ``order``."""
    response = admin_client.get(f"/admin/optimization/optimizationrun/?o={order}")
    assert response.status_code == 200
    html = response.content.decode()
    return [int(i) for i in re.findall(r'name="_selected_action" value="(\d+)"', html)]


def test_runs_can_be_sorted_by_any_metric(admin_client, alice, datasets):
    job = make_job(alice, datasets)
    run_all_chunks(job)
    runs = list(OptimizationRun.objects.filter(job=job))
    # The admin's ``o`` counts list_display columns from 1 (0 is the action checkbox).
    columns = list(admin.site.get_model_admin(OptimizationRun).list_display)
    by_sharpe = None
    for name in METRIC_NAMES:
        column = columns.index(name) + 1
        scored = sorted((r for r in runs if getattr(r, name) is not None), key=lambda r: -r.id)
        for sign, descending in (("", False), ("-", True)):
            listed = listed_run_ids(admin_client, f"{sign}{column}")
            assert sorted(listed) == sorted(r.id for r in runs), name  # every run, once
            # Equal values keep the admin's tie-break (newest first); a stable sort keeps it.
            expected = [
                r.id for r in sorted(scored, key=lambda r: getattr(r, name), reverse=descending)
            ]
            assert [i for i in listed if i in set(expected)] == expected, (name, sign)
            if name == "sharpe" and descending:
                by_sharpe = expected
    # The sharpe order is neither the insertion order nor its reverse: the check has teeth.
    ids = sorted(r.id for r in runs)
    assert by_sharpe not in (ids, ids[::-1])


def act(admin_client, action, jobs):
    return admin_client.post(
        "/admin/optimization/optimizationjob/",
        {"action": action, "_selected_action": [j.id for j in jobs]},
        follow=True,
    )


def test_cancel_duplicate_and_start_actions(admin_client, alice, datasets):
    job = make_job(alice, datasets)
    act(admin_client, "cancel", [job])
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    act(admin_client, "duplicate", [job])
    copy = OptimizationJob.objects.exclude(id=job.id).get()
    assert copy.status == JobStatus.PENDING and copy.chunks.count() == 0
    act(admin_client, "start_or_rerun", [copy])
    copy.refresh_from_db()
    assert copy.enqueued_at is not None and copy.chunks.count() == 2  # one per dataset
    act(admin_client, "start_or_rerun", [job])  # a finished job is re-run as a new one
    assert OptimizationJob.objects.filter(rerun_of=job).count() == 1


def test_the_add_form_refuses_a_bad_grid(admin_client, datasets):
    response = admin_client.post(
        "/admin/optimization/optimizationjob/add/",
        {
            "name": "from admin",
            "strategy": "sma_cross",
            "datasets": [datasets[0].id],
            "parameter_grid": '{"fsat": [5]}',
            "objective": "sharpe",
            "costs": "{}",
            "description": "",
        },
    )
    assert response.status_code == 400  # refused, like the lab's launch form
    assert "did you mean" in response.content.decode()
    assert OptimizationJob.objects.count() == 0


def test_the_add_form_stores_a_validated_unstarted_job(admin_client, datasets):
    response = admin_client.post(
        "/admin/optimization/optimizationjob/add/",
        {
            "name": "from admin",
            "strategy": "sma_cross",
            "datasets": [datasets[0].id],
            "parameter_grid": '{"fast": [5, 10.0], "slow": {"start": 20, "stop": 60, "step": 20}}',
            "objective": "sharpe",
            "costs": "{}",
            "description": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    job = OptimizationJob.objects.get()
    assert job.parameter_grid["fast"] == [5, 10] and job.parameter_grid["slow"] == [20, 40, 60]
    assert job.enqueued_at is None and job.costs["commission_pct"] == 0.1


# --- issue 14: no job that waits for ever, chunks and runs view only -----------------------


def test_start_refuses_a_job_whose_datasets_are_gone_and_writes_nothing(
    admin_client, alice, datasets
):
    """Cancelled before it ran, its dataset then deleted: Start re-ran it as a copy with no
    dataset and no chunk, PENDING for ever and holding a quota slot."""
    job = make_job(alice, [datasets[0]], start=False)
    job_cancel(job=job)
    datasets[0].delete()
    jobs, chunks = OptimizationJob.objects.count(), JobChunk.objects.count()
    response = act(admin_client, "start_or_rerun", [job])
    assert f"Job {job.id}: job {job.id} has no dataset left" in response.content.decode()
    assert (OptimizationJob.objects.count(), JobChunk.objects.count()) == (jobs, chunks)
    api = APIClient()
    api.force_authenticate(alice)
    response = api.post(f"/api/jobs/{job.id}/rerun/")
    assert response.status_code == 400 and response.json()["field"] == "datasets"
    assert OptimizationJob.objects.count() == jobs


def test_a_job_with_nothing_to_run_is_never_started(alice, datasets):
    job = make_job(alice, [datasets[0]], start=False)
    # an evaluation job of no simulation: no chunk would ever finish it
    OptimizationJob.objects.filter(id=job.id).update(kind="monte_carlo", options={"sims": 0})
    job.refresh_from_db()
    with pytest.raises(ApplicationError, match="nothing to run") as exc:
        job_start(job=job)
    assert "0 simulations on 1 datasets" in exc.value.message
    job.refresh_from_db()
    assert job.enqueued_at is None and job.chunks.count() == 0 and job.chunks_total == 0


def test_chunks_and_runs_are_view_only_in_the_admin(admin_client, alice, datasets):
    """Editing a chunk or deleting a chunk or a run broke the job's counters."""
    job = make_job(alice, datasets)
    run_all_chunks(job)
    chunk, run = job.chunks.order_by("id").first(), job.runs.order_by("id").first()
    before = (job.completed_runs, JobChunk.objects.count(), OptimizationRun.objects.count())
    for model, obj in (("jobchunk", chunk), ("optimizationrun", run)):
        base = f"/admin/optimization/{model}/"
        page = admin_client.get(f"{base}{obj.id}/change/")
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
        listing = admin_client.get(base).content.decode()
        assert str(obj.id) in listing and 'value="delete_selected"' not in listing
        assert (
            admin_client.post(f"{base}{obj.id}/change/", {"status": "pending"}).status_code == 403
        )
        assert admin_client.post(f"{base}{obj.id}/delete/", {"post": "yes"}).status_code == 403
        assert admin_client.get(f"{base}add/").status_code == 403
        admin_client.post(base, {"action": "delete_selected", "_selected_action": [obj.id]})
    chunk.refresh_from_db()
    assert chunk.status == JobChunk.Status.DONE
    job.refresh_from_db()
    assert (job.completed_runs, JobChunk.objects.count(), OptimizationRun.objects.count()) == before


def test_a_job_is_still_deleted_with_its_chunks_and_runs(admin_client, alice, datasets):
    job = make_job(alice, datasets)
    run_all_chunks(job)
    url = f"/admin/optimization/optimizationjob/{job.id}/delete/"
    assert "Are you sure" in admin_client.get(url).content.decode()
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not OptimizationJob.objects.exists()
    assert not JobChunk.objects.exists() and not OptimizationRun.objects.exists()


def test_the_add_form_stores_the_grid_plan_and_refuses_a_grid_that_runs_nothing(
    admin_client, datasets
):
    form = {
        "name": "from admin",
        "strategy": "sma_cross",
        "datasets": [d.id for d in datasets],
        "parameter_grid": '{"fast": [5, 20, 40], "slow": [10, 30]}',
        "objective": "sharpe",
        "costs": "{}",
        "description": "",
    }
    response = admin_client.post("/admin/optimization/optimizationjob/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    job = OptimizationJob.objects.get()
    # fast < slow holds for (5, 10), (5, 30), (20, 30): 3 of 6, on 2 datasets
    assert (job.grid_combinations, job.skipped_combinations, job.total_runs) == (6, 3, 6)
    act(admin_client, "start_or_rerun", [job])
    job.refresh_from_db()
    assert job.total_runs == 6 and job.chunks.count() == 2
    response = admin_client.post(
        "/admin/optimization/optimizationjob/add/",
        {**form, "parameter_grid": '{"fast": [40], "slow": [10, 30]}'},
    )
    assert response.status_code == 400
    assert "all 2 combinations break the strategy&#x27;s constraints (fast &lt; slow)" in (
        response.content.decode()
    )
    assert OptimizationJob.objects.count() == 1
