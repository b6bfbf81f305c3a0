"""What may be "best": a run that trades fewer than its job's ``min_trades`` (a configuration
that never trades has a max drawdown of 0, the best there is), a failed run or one whose
objective is undefined is never ranked, starred, applied or auto-applied, on any surface."""

import datetime as dt

import pytest
from rest_framework.test import APIClient

from apps.optimization.models import JobTemplate, OptimizationRun, TemplateFiring
from apps.optimization.selectors.heatmap import heatmap_options, job_heatmap
from apps.optimization.selectors.jobs import job_best_runs, job_unranked_counts
from apps.optimization.services.schedules import template_fire
from apps.strategies.models import StrategyConfig
from apps.strategies.receivers import job_finished_auto_apply
from apps.strategies.services.apply import apply_plan, job_best_run_for, run_apply_to_production
from apps.strategies.services.auto_tuner import apply_best_params
from backtestlab.errors import ApplicationError
from tests.factories import make_job, run_all_chunks
from tests.strategies.conftest import approve, grant

pytestmark = pytest.mark.django_db

# A slow SMA of 1999 bars is never defined on the fixtures' 60 days (1440 bars): a run without
# a single trade, whose max drawdown (0 %) beats every run that trades. (fast >= slow would
# never trade either, but such combinations break the constraint fast < slow: never run.)
IDLE_SLOW = 1999
GRID = {"fast": [5], "slow": [20, 40, IDLE_SLOW], "sl_pct": [2.0], "rr": [2.0]}


def idle(job) -> OptimizationRun:
    (run,) = OptimizationRun.objects.filter(job=job, params__slow=IDLE_SLOW)
    return run


def trading(job) -> list[OptimizationRun]:
    return list(
        OptimizationRun.objects.filter(job=job).exclude(params__slow=IDLE_SLOW).order_by("id")
    )


@pytest.fixture
def drawdown_job(alice, datasets):
    job = make_job(alice, datasets[:1], grid=GRID, objective="max_drawdown_pct", min_trades=1)
    run_all_chunks(job)
    assert job.status == "succeeded"
    assert idle(job).n_trades == 0 and idle(job).max_drawdown_pct == 0.0
    assert all(r.n_trades > 0 and r.max_drawdown_pct < 0 for r in trading(job))
    return job


def test_a_run_that_never_trades_is_not_the_jobs_best(drawdown_job):
    job = drawdown_job
    best = max(trading(job), key=lambda r: (r.max_drawdown_pct, -r.id))
    assert job.best_run_id == best.id
    assert job.best_params["overall"]["run_id"] == best.id
    assert [r.id for r in job_best_runs(job=job, limit=10)] == [
        r.id for r in sorted(trading(job), key=lambda r: (-r.max_drawdown_pct, r.id))
    ]
    assert job_best_run_for(job=job).id == best.id


def test_the_threshold_is_the_jobs_min_trades_inclusive(alice, datasets):
    job = make_job(alice, datasets[:1], grid=GRID, objective="max_drawdown_pct", min_trades=1)
    run_all_chunks(job)
    fewest = min(r.n_trades for r in trading(job))
    job.min_trades = fewest
    job.save()
    assert fewest in [r.n_trades for r in job_best_runs(job=job, limit=10)]
    job.min_trades = fewest + 1
    job.save()
    assert fewest not in [r.n_trades for r in job_best_runs(job=job, limit=10)]
    counts = job_unranked_counts(job=job)
    assert counts == {"failed": 0, "few_trades": 2, "undefined": 0}


def test_the_api_lists_it_with_its_reason_but_never_among_the_best(alice, drawdown_job):
    job, client = drawdown_job, APIClient()
    client.force_authenticate(alice)
    best = client.get(f"/api/jobs/{job.id}/best/?limit=10").json()["best"]
    assert idle(job).id not in [r["id"] for r in best] and len(best) == 2
    assert all(r["unranked_reason"] == "" for r in best)
    runs = {r["id"]: r for r in client.get(f"/api/jobs/{job.id}/runs/").json()["results"]}
    assert runs[idle(job).id]["unranked_reason"] == ("0 trades, fewer than the job's minimum of 1")
    assert client.get(f"/api/jobs/{job.id}/").json()["min_trades"] == 1


def test_the_heatmap_greys_the_idle_cell_and_stars_a_trading_one(drawdown_job):
    job = drawdown_job
    options = heatmap_options(job, {"x": "slow", "y": "fast", "metric": "max_drawdown_pct"})
    heatmap = job_heatmap(job=job, options=options)
    (row,) = heatmap.cells
    assert [c["ranked"] for c in row] == [1, 1, 0]
    assert row[2]["value"] == 0.0  # still shown, greyed
    best = max(trading(job), key=lambda r: r.max_drawdown_pct)
    assert (heatmap.best["x"], heatmap.best["value"]) == (
        best.params["slow"],
        best.max_drawdown_pct,
    )


def test_the_pages_grey_it_and_offer_no_apply_button(client, alice, drawdown_job):
    job = drawdown_job
    alice = grant(alice)
    client.force_login(alice)
    page = client.get(f"/lab/jobs/{job.id}/").content.decode()
    assert f"/lab/jobs/{job.id}/runs/{idle(job).id}/apply/" not in page
    for run in trading(job):
        assert f"/lab/jobs/{job.id}/runs/{run.id}/apply/" in page
    assert "Not ranked (never best, starred or applied):" in page
    assert "1 run with fewer than 1 trades" in page
    heatmap = client.get(f"/lab/jobs/{job.id}/heatmap/?x=slow&y=fast&metric=max_drawdown_pct")
    html = heatmap.content.decode()
    assert html.count('class="unranked"') == 1
    assert "none with at least 1 trades and a value: not ranked" in html
    detail = client.get(f"/lab/jobs/{job.id}/runs/{idle(job).id}/").content.decode()
    assert "no — 0 trades, fewer than the job&#x27;s minimum of 1" in detail


def test_applying_it_is_refused_by_the_ranked_gate_everywhere(alice, drawdown_job):
    job = drawdown_job
    approve("PILOT")
    alice = grant(alice)
    plan = apply_plan(run=idle(job))
    assert plan.refusal == {
        "gate": "ranked", "ok": False,
        "detail": "0 trades, fewer than the job's minimum of 1",
    }  # fmt: skip
    with pytest.raises(ApplicationError) as err:
        run_apply_to_production(run=idle(job), user=alice, dry_run=False)
    assert "0 trades, fewer than the job's minimum of 1" in err.value.message
    assert not StrategyConfig.objects.exists()
    ok = apply_plan(run=trading(job)[0])
    assert ok.checks[0] == {
        "gate": "ranked", "ok": True,
        "detail": f"{trading(job)[0].n_trades} trades, at least the job's minimum of 1",
    }  # fmt: skip


def test_the_auto_tuner_and_beat_auto_apply_pick_a_trading_run(alice, datasets):
    approve("PILOT")
    alice = grant(alice)
    template = JobTemplate.objects.create(
        name="dd", strategy="sma_cross", parameter_grid=GRID, objective="max_drawdown_pct",
        min_trades=1, auto_apply=JobTemplate.AutoApply.APPLY, min_improvement_pct=0, owner=alice,
    )  # fmt: skip
    template.datasets.set(datasets[:1])
    firing = template_fire(template_id=template.id, slot=dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    job = firing.job
    assert job.min_trades == 1
    run_all_chunks(job)
    job_finished_auto_apply(job_id=job.id)
    result = TemplateFiring.objects.get(id=firing.id).apply_result
    best = max(trading(job), key=lambda r: (r.max_drawdown_pct, -r.id))
    # applied or held back by the improvement gate: either way about the best trading run
    assert [e["run"] for e in result["changes"] + result["refused"]] == [best.id]
    assert not StrategyConfig.objects.filter(params__slow=IDLE_SLOW).exists()
    dry = apply_best_params(job=job, user=alice, dry_run=True, min_improvement_pct=0)
    assert [e["run"] for e in dry["changes"] + dry["refused"]] == [best.id]


def test_min_trades_is_checked_where_a_job_is_made(alice, datasets):
    for bad in (0, -1, 100_001, "30", 2.5, True):
        with pytest.raises(ApplicationError) as err:
            make_job(alice, datasets[:1], min_trades=bad)
        assert err.value.field == "min_trades"
        assert err.value.message == (
            f"min_trades must be an integer between 1 and 100000, got {bad!r}"
        )
    job = make_job(alice, datasets[:1], grid=GRID, min_trades=100_000)
    assert job.min_trades == 100_000
    client = APIClient()
    client.force_authenticate(alice)
    body = {"name": "x", "strategy": "sma_cross", "datasets": [datasets[0].id],
            "parameter_grid": {"fast": [5]}}  # fmt: skip
    assert client.post("/api/jobs/", body, format="json").json()["min_trades"] == 30
    refused = client.post("/api/jobs/", {**body, "min_trades": 0}, format="json")
    assert refused.status_code == 400 and "min_trades" in str(refused.json())


def test_a_duplicate_and_a_rerun_keep_the_jobs_min_trades(alice, datasets):
    from apps.optimization.services.jobs import job_copy

    job = make_job(alice, datasets[:1], grid=GRID, min_trades=7)
    assert job_copy(job=job, user=alice, start=False).min_trades == 7
    assert job_copy(job=job, user=alice, start=True, rerun=True).min_trades == 7
