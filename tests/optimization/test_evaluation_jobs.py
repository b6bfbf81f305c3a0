"""Monte Carlo and walk-forward jobs through the task bodies; overfitting of a sweep."""

import datetime as dt

import pytest

from apps.market.selectors import dataset_market_data
from apps.optimization.gateway import run_trades
from apps.optimization.models import JobChunk, JobStatus, OptimizationJob
from apps.optimization.services.jobs import job_copy
from apps.optimization.services.monte_carlo import monte_carlo_job_create
from apps.optimization.services.overfitting import job_overfitting
from apps.optimization.services.walk_forward import (
    walk_forward_job_create,
    walk_forward_job_from_sweep,
)
from apps.strategies.services.approval import job_evaluate
from backtestlab.engine import sweep as sweep_lib
from backtestlab.engine.evaluation import monte_carlo as mc
from backtestlab.engine.evaluation import overfitting, walk_forward
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.timeframes import bars_per_year
from backtestlab.errors import ApplicationError
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db

GRID = {"fast": [5, 10], "slow": [30, 60], "sl_pct": [1.0, 2.0], "rr": [2.0]}


@pytest.fixture
def sweep(alice, datasets):
    job = make_job(alice, datasets[:1], grid=GRID)
    run_all_chunks(job)
    assert job.status == JobStatus.SUCCEEDED
    return job


def test_a_monte_carlo_job_runs_in_chunks_and_matches_the_engine(alice, sweep):
    run = sweep.best_run
    job = monte_carlo_job_create(user=alice, run=run, sims=2500, trades_per_sim=40, seed=9)
    assert job.kind == OptimizationJob.Kind.MONTE_CARLO
    assert job.chunks.count() == 3 and job.total_runs == 2500
    results = run_all_chunks(job, times=2)
    assert results.count("done") == 3 and results.count("skipped") == 3
    assert job.status == JobStatus.SUCCEEDED and job.completed_runs == 2500
    engine = mc.run_monte_carlo(job.options["returns"], sims=2500, trades_per_sim=40, seed=9)
    assert job.evaluation["profile"] == pytest.approx(engine.profile.as_dict())
    assert job.evaluation["bands"]["50"] == pytest.approx(engine.bands[50])
    assert set(job.evaluation["histograms"]) == {"final_return", "max_drawdown",
                                                 "max_loss_streak"}  # fmt: skip
    trades = run_trades(run)
    assert job.options["returns"] == [t.pnl_frac for t in trades]


def test_a_monte_carlo_job_without_trades_is_refused(alice, datasets):
    never = make_job(alice, datasets[:1], grid={"fast": [50], "slow": [1999]})
    run_all_chunks(never)
    run = never.runs.get()
    with pytest.raises(ApplicationError, match="closed no trade"):
        monte_carlo_job_create(user=alice, run=run, sims=10)


def test_monte_carlo_options_are_validated(alice, sweep):
    run = sweep.best_run
    with pytest.raises(ApplicationError, match="sims must be an integer between"):
        monte_carlo_job_create(user=alice, run=run, sims=0)
    with pytest.raises(ApplicationError, match="mode must be one of"):
        monte_carlo_job_create(user=alice, run=run, mode="random")
    with pytest.raises(ApplicationError, match="shuffle draws without replacement"):
        monte_carlo_job_create(user=alice, run=run, mode="shuffle", trades_per_sim=10_000)


def test_a_walk_forward_job_runs_one_chunk_per_fold(alice, sweep):
    job = walk_forward_job_from_sweep(user=alice, job=sweep, n_splits=3)
    assert job.kind == OptimizationJob.Kind.WALK_FORWARD
    assert list(job.chunks.values_list("start", "stop")) == [(0, 1), (1, 2), (2, 3)]
    run_all_chunks(job)
    assert job.status == JobStatus.SUCCEEDED, job.error
    folds = job.evaluation["folds"]
    assert [f["index"] for f in folds] == [0, 1, 2]
    # one chunk per fold gives what the engine's walk-forward gives in one go
    strategy = get_strategy("sma_cross")
    grid = sweep.grid
    engine = walk_forward.walk_forward(
        strategy, dataset_market_data(sweep.datasets.get()),
        sweep_lib.params_range(grid, 0, sweep_lib.grid_size(grid)), Costs(**sweep.costs),
        objective="sharpe", n_splits=3, min_trades=sweep.min_trades,
    )  # fmt: skip
    assert [f["params"] for f in folds] == [f.params for f in engine.folds]
    assert [f["grid_index"] for f in folds] == [f.grid_index for f in engine.folds]
    assert [f["oos_value"] for f in folds] == pytest.approx([f.oos_value for f in engine.folds])
    summary = job.evaluation["summary"]
    assert summary["folds"] == 3
    assert summary["wfe"] == pytest.approx(engine.summary["wfe"], nan_ok=True)
    assert all(c.result for c in JobChunk.objects.filter(job=job))


def test_a_walk_forward_of_a_two_dataset_sweep_folds_every_dataset(alice, datasets, client):
    sweep = make_job(alice, datasets, grid=GRID)
    run_all_chunks(sweep)
    job = walk_forward_job_from_sweep(user=alice, job=sweep, n_splits=2)
    assert job.total_runs == 4 and job.name == "Walk-forward sma_cross on 2 datasets"
    assert sorted(job.chunks.values_list("dataset_id", "start")) == sorted(
        (d.id, k) for d in datasets for k in (0, 1)
    )
    run_all_chunks(job)
    assert job.status == JobStatus.SUCCEEDED, job.error
    ev = job.evaluation
    assert [(f["dataset_id"], f["index"]) for f in ev["folds"]] == [
        (d.id, k) for d in sorted(datasets, key=lambda d: d.id) for k in (0, 1)
    ]
    strategy = get_strategy("sma_cross")
    params = sweep_lib.params_range(GRID, 0, sweep_lib.grid_size(GRID))
    engine = {}
    for d in datasets:  # each dataset's folds are the engine's walk-forward of that dataset
        engine[d.id] = walk_forward.walk_forward(
            strategy, dataset_market_data(d), params, Costs(**sweep.costs), objective="sharpe",
            n_splits=2, min_trades=sweep.min_trades,
        )  # fmt: skip
        mine = [f for f in ev["folds"] if f["dataset_id"] == d.id]
        assert [f["params"] for f in mine] == [f.params for f in engine[d.id].folds]
        assert [f["train"] for f in mine] == [list(f.train) for f in engine[d.id].folds]
        (figures,) = [p for p in ev["per_dataset"] if p["dataset_id"] == d.id]
        assert figures["dataset"] == d.name
        assert figures["wfe"] == pytest.approx(engine[d.id].summary["wfe"], nan_ok=True)
    every = [f for e in engine.values() for f in e.folds]
    pooled = walk_forward.walk_forward_efficiency(every, "sharpe")
    assert ev["summary"]["folds"] == 4
    assert ev["summary"]["oos_mean"] == pytest.approx(pooled["oos_mean"], nan_ok=True)
    client.force_login(alice)
    page = client.get(f"/lab/jobs/{job.id}/").content.decode()
    first = ev["folds"][0]
    assert 'id="wf-datasets"' in page and datasets[1].name in page
    assert f"<code>fast={first['params']['fast']}</code>" in page
    day = dt.datetime.fromtimestamp(first["test"][0], dt.UTC).strftime("%Y-%m-%d UTC")
    assert day in page
    # The approval gate reads the best run's own dataset's out-of-sample figures.
    approval = job_evaluate(job=sweep, trigger="page", user=alice)
    wf = approval.gates["walk_forward"]
    assert wf["job"] == job.id and wf["summary"]["dataset_id"] == sweep.best_run.dataset_id


def test_a_walk_forward_can_re_pick_by_the_robust_rule_in_each_fold(alice, sweep):
    sweep.min_trades = 3
    sweep.save()
    job = walk_forward_job_from_sweep(user=alice, job=sweep, n_splits=3, pick="robust")
    assert job.min_trades == 3 and job.options["pick"] == "robust"
    run_all_chunks(job)
    assert job.status == JobStatus.SUCCEEDED, job.error
    params = sweep_lib.params_range(GRID, 0, sweep_lib.grid_size(GRID))
    data = dataset_market_data(sweep.datasets.get())
    strategy = get_strategy("sma_cross")
    robust = walk_forward.walk_forward(
        strategy, data, params, Costs(**sweep.costs), objective="sharpe", n_splits=3,
        min_trades=3, pick="robust", grid=GRID,
    )  # fmt: skip
    plain = walk_forward.walk_forward(
        strategy, data, params, Costs(**sweep.costs), objective="sharpe", n_splits=3,
        min_trades=3,
    )  # fmt: skip
    folds = job.evaluation["folds"]
    assert [f["grid_index"] for f in folds] == [f.grid_index for f in robust.folds]
    assert [f.grid_index for f in robust.folds] != [f.grid_index for f in plain.folds]
    with pytest.raises(ApplicationError, match="pick must be one of objective, robust"):
        walk_forward_job_from_sweep(user=alice, job=sweep, pick="lucky")


def test_walk_forward_options_are_validated(alice, datasets):
    with pytest.raises(ApplicationError, match="train_frac \\+ test_frac must be 1"):
        walk_forward_job_create(
            user=alice, strategy="sma_cross", dataset_id=datasets[0].id, parameter_grid=GRID,
            train_frac=0.5, test_frac=0.3,
        )  # fmt: skip
    with pytest.raises(ApplicationError, match="n_splits must be an integer between 1 and 50"):
        walk_forward_job_create(
            user=alice, strategy="sma_cross", dataset_id=datasets[0].id, parameter_grid=GRID,
            n_splits=0,
        )  # fmt: skip


def test_a_finished_sweep_gets_its_overfitting_figures(sweep):
    figures = sweep.evaluation["overfitting"]
    assert figures["n_trials"] == 8 and figures["best_run"] == sweep.best_run_id
    assert 0 <= figures["pbo"]["pbo"] <= 1
    assert figures["deflated_sharpe"]["n_trials"] == 8
    # CSCV over the per-bar returns of the 8 runs (grid order), the best run's column chosen
    runs = list(sweep.runs.order_by("grid_index"))
    strategy = get_strategy("sma_cross")
    ctx = strategy.prepare(dataset_market_data(sweep.datasets.get()))
    matrix, per = overfitting.returns_matrix(
        strategy, ctx, [r.params for r in runs], Costs(**sweep.costs)
    )
    assert (per, figures["n_configs"], figures["n_periods"]) == (1.0, 8, matrix.shape[0])
    pbo = overfitting.probability_of_backtest_overfitting(matrix, n_blocks=16)
    assert figures["pbo"]["pbo"] == pytest.approx(pbo.pbo)
    best = [r.id for r in runs].index(sweep.best_run_id)
    dsr = overfitting.deflated_sharpe_ratio(
        matrix[:, best], overfitting.per_period_sharpes(matrix),
        periods_per_year=bars_per_year("1h"),
    )  # fmt: skip
    assert figures["deflated_sharpe"]["dsr"] == pytest.approx(dsr.dsr)


def test_overfitting_is_computed_lazily_for_older_sweeps(sweep):
    OptimizationJob.objects.filter(id=sweep.id).update(evaluation=None)
    sweep.refresh_from_db()
    figures = job_overfitting(job=sweep)
    assert figures["n_trials"] == 8
    sweep.refresh_from_db()
    assert sweep.evaluation["overfitting"] == figures


def test_a_copy_of_a_monte_carlo_job_keeps_its_options(alice, sweep):
    job = monte_carlo_job_create(user=alice, run=sweep.best_run, sims=10, seed=1)
    copy = job_copy(job=job, user=alice, start=True, rerun=True)
    run_all_chunks(copy)
    run_all_chunks(job)
    assert copy.evaluation["profile"] == job.evaluation["profile"]
