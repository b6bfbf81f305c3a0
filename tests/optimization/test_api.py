"""REST API: create, read, runs, best, cancel; owner, colleague, outsider; one error shape."""

import json

import pytest
from rest_framework.test import APIClient

from apps.market.models import Dataset
from apps.optimization.models import JobStatus, OptimizationJob, OptimizationRun
from tests.factories import SMALL_GRID, make_job, run_all_chunks

pytestmark = pytest.mark.django_db


def client_for(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def post_job(client, ds, **overrides):
    body = {
        "name": "api job",
        "strategy": "sma_cross",
        "datasets": [d.id for d in ds],
        "parameter_grid": SMALL_GRID,
        "objective": "sharpe",
        **overrides,
    }
    return client.post("/api/jobs/", body, format="json")


def test_anonymous_requests_are_refused(datasets):
    refused = {"ok": False, "error": "Authentication credentials were not provided."}
    for response in (
        client_for().get("/api/jobs/"),
        client_for().post("/api/jobs/", {}, format="json"),
    ):
        assert response.status_code == 403 and response.json() == refused
    assert OptimizationJob.objects.count() == 0


def test_owner_creates_a_job_and_sees_its_progress(alice, datasets):
    response = post_job(client_for(alice), datasets)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["total_runs"] == 24
    assert body["created_by"] == "alice" and body["progress_pct"] == 0.0
    job = OptimizationJob.objects.get(id=body["id"])
    run_all_chunks(job)
    detail = client_for(alice).get(f"/api/jobs/{job.id}/").json()
    assert detail["status"] == "succeeded" and detail["progress_pct"] == 100.0
    assert detail["best_params"]["overall"]["params"]["fast"] in (5, 10, 20)


def test_an_outsider_gets_404_and_a_colleague_sees_the_job(alice, bob, charlie, datasets):
    job = make_job(alice, datasets)
    assert client_for(charlie).get(f"/api/jobs/{job.id}/").status_code == 404
    assert client_for(charlie).post(f"/api/jobs/{job.id}/cancel/").status_code == 404
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING  # the outsider's cancel did nothing
    assert client_for(charlie).get("/api/jobs/").json()["count"] == 0
    seen = client_for(bob).get(f"/api/jobs/{job.id}/")
    assert seen.status_code == 200
    assert (seen.json()["id"], seen.json()["name"], seen.json()["created_by"]) == (
        job.id, "test job", "alice",
    )  # fmt: skip
    listed = client_for(bob).get("/api/jobs/").json()
    assert listed["count"] == 1 and [j["id"] for j in listed["results"]] == [job.id]


def test_staff_see_every_job(alice, staff, datasets):
    job = make_job(alice, datasets)
    response = client_for(staff).get(f"/api/jobs/{job.id}/")
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["created_by"]) == (job.id, "alice")
    assert [j["id"] for j in client_for(staff).get("/api/jobs/").json()["results"]] == [job.id]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"strategy": "nope"}, "strategy"),
        ({"parameter_grid": {"fsat": [1]}}, "parameter_grid.fsat"),
        ({"parameter_grid": {}}, "parameter_grid"),
        (
            {"parameter_grid": {"sl_pct": {"start": 1, "stop": 2, "step": 0}}},
            "parameter_grid.sl_pct",
        ),
        ({"datasets": []}, "datasets"),
        ({"datasets": ["x"]}, "datasets"),
        ({"datasets": [999999]}, "datasets"),
        ({"objective": "luck"}, "objective"),
        ({"name": ""}, "name"),
        ({"costs": {"commission_pct": -1}}, "costs.commission_pct"),
    ],
)
def test_bad_input_gets_400_with_the_field_and_writes_nothing(alice, datasets, overrides, field):
    response = post_job(client_for(alice), datasets, **overrides)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["ok"] is False and body["error"]
    assert body.get("field", "").startswith(field.split(".")[0]), body
    assert OptimizationJob.objects.count() == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e309", "-1e309"])
def test_non_finite_numbers_in_json_are_refused(alice, datasets, literal):
    raw = json.dumps({"name": "x", "strategy": "sma_cross", "datasets": [datasets[0].id]})
    raw = raw[:-1] + ', "parameter_grid": {"sl_pct": [' + literal + "]}}"
    response = client_for(alice).post("/api/jobs/", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert OptimizationJob.objects.count() == 0


def test_runs_are_paginated_filtered_and_ordered(alice, datasets):
    job = make_job(alice, datasets)
    run_all_chunks(job)
    client = client_for(alice)
    page = client.get(f"/api/jobs/{job.id}/runs/?page_size=5&ordering=-total_return_pct").json()
    assert page["count"] == 24 and len(page["results"]) == 5
    values = [r["total_return_pct"] for r in page["results"]]
    assert values == sorted(values, reverse=True)
    capped = client.get(f"/api/jobs/{job.id}/runs/?page_size=100000").json()
    assert len(capped["results"]) == 24
    one = client.get(f"/api/jobs/{job.id}/runs/?dataset={datasets[1].id}").json()
    assert one["count"] == 12 and {r["dataset"] for r in one["results"]} == {datasets[1].id}
    bad = client.get(f"/api/jobs/{job.id}/runs/?ordering=password")
    assert bad.status_code == 400 and bad.json()["field"] == "ordering"


def test_best_returns_runs_in_objective_order(alice, datasets):
    job = make_job(alice, datasets, objective="total_return_pct")
    run_all_chunks(job)
    body = client_for(alice).get(f"/api/jobs/{job.id}/best/?limit=3").json()
    runs = OptimizationRun.objects.filter(job=job)
    top3 = list(runs.order_by("-total_return_pct", "id")[:3])
    assert [r["id"] for r in body["best"]] == [r.id for r in top3]
    assert [r["total_return_pct"] for r in body["best"]] == [r.total_return_pct for r in top3]
    # per dataset: each dataset's own best run
    assert {r["dataset"]: r["id"] for r in body["per_dataset"]} == {
        d.id: runs.filter(dataset=d).order_by("-total_return_pct", "id").first().id
        for d in datasets
    }


def test_cancel_and_cancel_again(alice, datasets):
    job = make_job(alice, datasets)
    client = client_for(alice)
    response = client.post(f"/api/jobs/{job.id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == JobStatus.CANCELLED
    again = client.post(f"/api/jobs/{job.id}/cancel/")
    assert again.status_code == 409 and again.json()["ok"] is False


def test_strategies_and_datasets_are_listed(alice, datasets):
    client = client_for(alice)
    strategies = client.get("/api/strategies/").json()
    sma = next(s for s in strategies if s["key"] == "sma_cross")
    assert [p["name"] for p in sma["parameters"]] == ["fast", "slow", "sl_pct", "rr"]
    listed = client.get("/api/datasets/").json()
    stored = Dataset.objects.all()
    assert listed["count"] == 6  # BTC and ETH: candles, funding, environment
    assert {
        d["id"]: (d["name"], d["kind"], d["rows"], d["checksum"]) for d in listed["results"]
    } == {d.id: (d.name, d.kind, d.rows, d.checksum) for d in stored}


def test_the_schema_is_served(alice):
    response = client_for(alice).get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/jobs/{id}/best/" in response.content


def test_an_unknown_objective_lists_the_allowed_ones(alice, datasets):
    response = post_job(client_for(alice), datasets, objective="sharpee")
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "objective"
    assert "choose one of" in body["error"] and "total_return_pct" in body["error"]
