"""Issue 15, item 2: combinations that break a strategy's constraints are not run. The launch
form and the API say so before launch ("900 combinations, 378 skipped by fast < slow, 522
runs"), the job stores both counts, chunks hold only runs, and the pages say "skipped"."""

from __future__ import annotations

import math

import numpy as np
import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.optimization.models import JobChunk, JobStatus, OptimizationJob, OptimizationRun, Trial
from apps.optimization.selectors.heatmap import heatmap_options, job_heatmap
from apps.optimization.selectors.neighbourhood import dataset_neighbourhood, runs_neighbourhood
from apps.optimization.services.walk_forward import walk_forward_job_from_sweep
from backtestlab.engine import sweep
from backtestlab.errors import ApplicationError
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db

# fast 2..7 x slow 4..8: 30 combinations; fast < slow holds, per fast value: fast 2 -> 5
# (slow 4..8), 3 -> 5, 4 -> 4 (5..8), 5 -> 3, 6 -> 2, 7 -> 1
GRID = {"fast": [2, 3, 4, 5, 6, 7], "slow": [4, 5, 6, 7, 8], "sl_pct": [2.0], "rr": [2.0]}
RUNS = 5 + 5 + 4 + 3 + 2 + 1  # 20
SKIPPED = 30 - RUNS  # 10


def test_the_job_stores_both_counts_and_runs_only_the_combinations_that_keep_them(
    alice, datasets, small_chunks
):
    job = make_job(alice, datasets, grid=GRID)
    assert (job.grid_combinations, job.skipped_combinations) == (30, SKIPPED)
    assert job.total_runs == RUNS * 2
    chunks = list(JobChunk.objects.filter(job=job).order_by("index"))
    allowed = np.array([f < s for f in GRID["fast"] for s in GRID["slow"]])
    # CHUNK_SIZE 5: 20 runs per dataset in 4 chunks of exactly 5 runs each, none empty
    assert len(chunks) == 8 and job.chunks_total == 8
    for c in chunks:
        assert allowed[c.start : c.stop].sum() == 5
    run_all_chunks(job)
    assert job.status == JobStatus.SUCCEEDED, job.error
    runs = list(OptimizationRun.objects.filter(job=job))
    assert len(runs) == job.completed_runs + job.failed_runs == RUNS * 2
    for run in runs:
        assert run.params["fast"] < run.params["slow"]
        assert run.params == sweep.params_at(job.grid, run.grid_index)
    per_dataset = {
        d.id: sorted(r.grid_index for r in runs if r.dataset_id == d.id) for d in datasets
    }
    expected = [int(k) for k in np.flatnonzero(allowed)]
    assert all(v == expected for v in per_dataset.values())
    # the trial ledger counts what was run, not what was skipped
    assert Trial.objects.filter(strategy="sma_cross").count() == RUNS * 2


def test_a_grid_that_runs_nothing_is_refused_and_nothing_is_stored(alice, datasets):
    with pytest.raises(ApplicationError) as err:
        make_job(alice, datasets[:1], grid={"fast": [30, 40], "slow": [10, 20]})
    assert err.value.field == "parameter_grid"
    assert "all 4 combinations break the strategy's constraints (fast < slow)" in err.value.message
    assert OptimizationJob.objects.count() == 0 and JobChunk.objects.count() == 0


def test_the_api_says_before_launch_what_will_run(alice, datasets):
    client = APIClient()
    client.force_authenticate(alice)
    body = {"strategy": "sma_cross", "datasets": [d.id for d in datasets], "parameter_grid": GRID}
    res = client.post("/api/jobs/plan/", body, format="json")
    assert res.status_code == 200, res.content
    assert res.json() == {
        "combinations": 30,
        "skipped": SKIPPED,
        "skipped_by": [{"constraint": "fast < slow", "combinations": SKIPPED}],
        "runs_per_dataset": RUNS,
        "datasets": 2,
        "runs": RUNS * 2,
        "text": f"6 × 5 = 30 combinations, {SKIPPED} skipped by fast < slow, "
        f"{RUNS} runs per dataset × 2 datasets = {RUNS * 2} runs",
    }
    one = client.post("/api/jobs/plan/", {**body, "datasets": [datasets[0].id]}, format="json")
    assert (
        one.json()["text"]
        == f"6 × 5 = 30 combinations, {SKIPPED} skipped by fast < slow, {RUNS} runs"
    )
    # the job created from the same body stores what the plan said
    created = client.post("/api/jobs/", {**body, "name": "planned"}, format="json").json()
    assert (created["grid_combinations"], created["skipped_combinations"]) == (30, SKIPPED)
    assert created["total_runs"] == RUNS * 2
    # bad input: a clear 400 naming the field, nothing stored
    before = OptimizationJob.objects.count()
    for bad, field in [
        ({**body, "parameter_grid": {"fast": [0]}}, "parameter_grid.fast"),
        ({**body, "datasets": [999999]}, "datasets"),
        ({**body, "strategy": "nope"}, "strategy"),
        ({**body, "typo": 1}, "typo"),
    ]:
        res = client.post("/api/jobs/plan/", bad, format="json")
        assert res.status_code == 400, (bad, res.content)
        assert field in res.content.decode()
    assert OptimizationJob.objects.count() == before
    assert APIClient().post("/api/jobs/plan/", body, format="json").status_code in (401, 403)


def test_the_launch_form_shows_the_plan_line(alice, datasets):
    web = Client()
    web.force_login(alice)
    page = web.get("/lab/jobs/new/").content.decode()
    assert 'id="launch-plan"' in page and 'hx-post="/lab/jobs/new/plan/"' in page
    form = {
        "strategy": "sma_cross",
        "datasets": [datasets[0].id],
        "p_fast": "2:7:1",
        "p_slow": "4, 5, 6, 7, 8",
        "p_sl_pct": "2",
        "p_rr": "2",
    }
    line = web.post("/lab/jobs/new/plan/", form).content.decode()
    assert f"6 × 5 = 30 combinations, {SKIPPED} skipped by fast &lt; slow, {RUNS} runs" in line
    bad = web.post("/lab/jobs/new/plan/", {**form, "p_fast": "two"}).content.decode()
    assert "Cannot count the runs yet" in bad and "fast" in bad
    none = web.post("/lab/jobs/new/plan/", {**form, "p_fast": "30", "p_slow": "10"}).content
    assert "nothing would run" in none.decode()
    assert OptimizationJob.objects.count() == 0


def test_pages_say_skipped_and_skipped_combinations_are_no_cliff(alice, datasets, small_chunks):
    job = make_job(alice, datasets[:1], grid=GRID, objective="total_return_pct")
    run_all_chunks(job)
    web = Client()
    web.force_login(alice)
    page = web.get(f"/lab/jobs/{job.id}/").content.decode()
    assert f"6 × 5 = 30 combinations, {SKIPPED} skipped by fast &lt; slow, {RUNS} runs" in page
    heatmap = job_heatmap(job=job, options=heatmap_options(job, {"x": "slow", "y": "fast"}))
    skipped = heatmap.skipped
    for yi, fast in enumerate(GRID["fast"]):
        for xi, slow in enumerate(GRID["slow"]):
            assert skipped[yi][xi] == (fast >= slow)
            assert (heatmap.cells[yi][xi] is None) == (fast >= slow)
    html = web.get(f"/lab/jobs/{job.id}/heatmap/?x=slow&y=fast").content.decode()
    assert html.count('class="nodata skipped"') == SKIPPED
    # transposed: rows slow, columns fast
    flipped = job_heatmap(job=job, options=heatmap_options(job, {"x": "fast", "y": "slow"}))
    assert flipped.skipped == [list(col) for col in zip(*skipped, strict=True)]
    # neighbourhood: a skipped neighbour is left out; an unranked one (fewer trades than
    # min_trades) is a cliff worth the grid's worst ranked value; per-row == grid-wide
    worst, mean = dataset_neighbourhood(job, datasets[0].id)
    runs = list(OptimizationRun.objects.filter(job=job))
    per_row = runs_neighbourhood(job, runs)
    ranked = {r.grid_index: r.total_return_pct for r in runs if r.n_trades >= job.min_trades}
    cliff = min(ranked.values())
    checked = 0
    for run in runs:
        w, m = per_row[run.id]
        gi = run.grid_index
        if gi not in ranked:
            assert math.isnan(w) and math.isnan(worst[gi])
            continue
        assert w == worst[gi] and m == pytest.approx(mean[gi])
        f, s = GRID["fast"].index(run.params["fast"]), GRID["slow"].index(run.params["slow"])
        around = [ranked[gi]]
        for df, ds in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nf, ns = f + df, s + ds
            if 0 <= nf < 6 and 0 <= ns < 5 and GRID["fast"][nf] < GRID["slow"][ns]:
                around.append(ranked.get(nf * 5 + ns, cliff))
        assert w == min(around) and m == pytest.approx(sum(around) / len(around))
        checked += 1
    assert checked >= 15
    skipped_index = GRID["fast"].index(7) * 5 + GRID["slow"].index(5)
    assert math.isnan(worst[skipped_index])


def test_walk_forward_never_evaluates_a_skipped_combination(alice, datasets, small_chunks):
    sweep_job = make_job(alice, datasets[:1], grid=GRID)
    run_all_chunks(sweep_job)
    wf = walk_forward_job_from_sweep(user=alice, job=sweep_job, n_splits=2)
    run_all_chunks(wf)
    assert wf.status == JobStatus.SUCCEEDED, wf.error
    for fold in wf.evaluation["folds"]:
        if fold.get("params"):
            assert fold["params"]["fast"] < fold["params"]["slow"]
    # the ledger: the walk-forward adds nothing new (the sweep ran the same 20 sets)
    assert Trial.objects.count() == RUNS
