"""Monte Carlo and walk-forward jobs, and a sweep's overfitting figures.

Both job kinds go through the ONE chunk machinery of :mod:`apps.optimization.services`
(``job_start`` splits, ``chunk_execute`` claims, computes, stores and counts exactly once,
``job_finalize`` finalizes once); this module supplies what differs:

* **Monte Carlo** (``kind=monte_carlo``): the source run's trade returns are frozen into
  ``job.options`` at creation (runs are deterministic, but freezing keeps the job's input
  visible and the chunks cheap).  Units are simulations; a chunk is a range of them, aligned
  to the engine's blocks so the same seed gives the same numbers however the job is split.
  A chunk stores its paths' outcomes (final return, max drawdown, loss streak) on
  ``JobChunk.result``; finalize combines them into the VarianceProfile, confidence intervals
  and histograms.  The percentile bands of the equity paths need all paths at once, so
  finalize regenerates the paths' checkpoint equity from the seed (one vectorised pass, well
  under a second at the 100,000-simulation cap) instead of shipping paths through the
  database.
* **Walk-forward** (``kind=walk_forward``): units are folds, one chunk per fold; a chunk runs
  the whole grid on the fold's train window and the winner on its test window.
* **Overfitting** of a finished sweep: PBO (CSCV) and deflated Sharpe ratio, computed when the
  sweep finalizes (and lazily for older sweeps), cached in ``job.evaluation["overfitting"]``.
"""

from __future__ import annotations

import logging
import math
import secrets
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.market.models import Dataset
from apps.market.selectors import dataset_companion, dataset_market_data
from apps.optimization.models import JobStatus, OptimizationJob, OptimizationRun
from backtestlab.engine import sweep
from backtestlab.engine.evaluation import monte_carlo as mc
from backtestlab.engine.evaluation import overfitting, walk_forward
from backtestlab.engine.evaluation.trades import trades_from_backtest
from backtestlab.engine.metrics import METRIC_NAMES, METRICS, bars_per_year
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.errors import ApplicationError

log = logging.getLogger(__name__)

MAX_SIMS = 100_000
MAX_TRADES_PER_SIM = 10_000
MAX_PATH_STEPS = 100_000_000  # sims x trades_per_sim
# Sweeps with more successful runs than this are sampled (every k-th grid index) for PBO.
OVERFITTING_MAX_CONFIGS = 300


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, recursively."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# --- a run's backtest, recomputed -------------------------------------------------------------


def run_backtest(run: OptimizationRun):
    """(strategy, prepared context, costs, BacktestResult) of a stored run (deterministic)."""
    from apps.optimization.services import _context

    job = run.job
    strategy = get_strategy(job.strategy)
    ctx = _context(job, run.dataset, strategy)
    costs = Costs(**job.costs)
    return strategy, ctx, costs, strategy.run(ctx, run.params, costs)


def run_trades(run: OptimizationRun):
    """The run's trades as seed-002 TradeResult records (exit time, fraction of equity)."""
    *_, result = run_backtest(run)
    return trades_from_backtest(result, underlying=run.dataset.symbol)


def _no_trades(run: OptimizationRun) -> ApplicationError:
    return ApplicationError(
        f"run {run.id} closed no trade, so there is nothing to evaluate; pick a run with trades "
        "(n_trades > 0)",
        field="run",
    )


# --- creation ----------------------------------------------------------------------------------


def _int_option(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApplicationError(
            f"{field} must be an integer between {low} and {high}, got {value!r}", field=field
        )
    return value


def _name_option(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApplicationError(f"name must be a string, got {value!r}", field="name")
    return value


def monte_carlo_job_create(
    *,
    user,
    run: OptimizationRun,
    sims: int = 10_000,
    trades_per_sim: int | None = None,
    mode: str = "bootstrap",
    seed: int | None = None,
    name: str = "",
    start: bool = True,
) -> OptimizationJob:
    """A Monte Carlo job over the trades of ``run`` (the caller checked the user may see it)."""
    from apps.optimization.services import job_quota_check, job_start

    job_quota_check(user=user, lock=False)
    name = _name_option(name)
    sims = _int_option("sims", sims, 1, MAX_SIMS)
    if mode not in mc.MODES:
        raise ApplicationError(f"mode must be one of {', '.join(mc.MODES)}, got {mode!r}",
                               field="mode")  # fmt: skip
    if seed is None:
        seed = secrets.randbits(32)  # stored, so the job can be reproduced
    seed = _int_option("seed", seed, 0, 2**63 - 1)
    if run.status != OptimizationRun.Status.SUCCEEDED:
        raise ApplicationError(f"run {run.id} failed; pick a succeeded run", field="run")
    returns = [t.pnl_pct for t in run_trades(run)]
    if not returns:
        raise _no_trades(run)
    if trades_per_sim is None or (trades_per_sim == 0 and not isinstance(trades_per_sim, bool)):
        trades_per_sim = len(returns)
    trades_per_sim = _int_option("trades_per_sim", trades_per_sim, 1, MAX_TRADES_PER_SIM)
    if mode == "shuffle" and trades_per_sim > len(returns):
        raise ApplicationError(
            f"shuffle draws without replacement: trades_per_sim must be at most the run's "
            f"{len(returns)} trades, got {trades_per_sim}; use bootstrap for longer paths",
            field="trades_per_sim",
        )
    if sims * trades_per_sim > MAX_PATH_STEPS:
        raise ApplicationError(
            f"sims x trades_per_sim = {sims * trades_per_sim:,} exceeds {MAX_PATH_STEPS:,}",
            field="sims",
        )
    source = run.job
    with transaction.atomic():
        job_quota_check(user=user, lock=True)
        job = OptimizationJob.objects.create(
            name=(name or f"Monte Carlo of run {run.id}")[:100],
            kind=OptimizationJob.Kind.MONTE_CARLO,
            strategy=source.strategy,
            date_from=source.date_from,
            date_to=source.date_to,
            parameter_grid={k: [v] for k, v in run.params.items()},
            objective=source.objective,
            costs=source.costs,
            chunk_size=mc.BLOCK,
            total_runs=sims,
            options={
                "source_run": run.id,
                "source_job": source.id,
                "params": run.params,
                "sims": sims,
                "trades_per_sim": trades_per_sim,
                "mode": mode,
                "seed": seed,
                "returns": returns,
            },
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        job.datasets.set([run.dataset])
        if start:
            job_start(job=job)
    return job


def walk_forward_job_create(
    *,
    user,
    strategy: str,
    dataset_id: int,
    parameter_grid: Any,
    objective: str = "sharpe",
    costs: Any = None,
    n_splits: int = 5,
    train_frac: float = 0.7,
    test_frac: float = 0.3,
    window: str = "rolling",
    date_from: Any = None,
    date_to: Any = None,
    name: str = "",
    start: bool = True,
) -> OptimizationJob:
    """A walk-forward job: optimise the grid on each train window, test on the next window."""
    from apps.optimization import services

    services.job_quota_check(user=user, lock=False)
    try:
        strategy_obj = get_strategy(strategy)
    except Exception as exc:
        raise ApplicationError(getattr(exc, "message", str(exc)), field="strategy") from None
    (dataset,) = services._datasets_validate([dataset_id], strategy_obj)
    grid = services.grid_validate(strategy, parameter_grid)
    objective = services.objective_validate(objective)
    valid_costs = services.costs_validate(costs)
    n_splits = _int_option("n_splits", n_splits, 1, 50)
    name = _name_option(name)
    if window not in walk_forward.WINDOW_MODES:
        raise ApplicationError(
            f"window must be one of {', '.join(walk_forward.WINDOW_MODES)}, got {window!r}",
            field="window",
        )
    start_at = services.date_validate("date_from", date_from)
    end_at = services.date_validate("date_to", date_to)
    for field, value in (("train_frac", train_frac), ("test_frac", test_frac)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApplicationError(f"{field} must be a number, got {value!r}", field=field)
        if not (math.isfinite(value) and 0 < value < 1):
            raise ApplicationError(
                f"{field} must be between 0 and 1 (exclusive), got {value!r}", field=field
            )
    if abs(train_frac + test_frac - 1) > 1e-9:
        raise ApplicationError(
            f"train_frac + test_frac must be 1, got {train_frac:g} + {test_frac:g} = "
            f"{train_frac + test_frac:g}",
            field="test_frac",
        )
    try:
        walk_forward.walk_forward_windows(
            dataset.rows, n_splits=n_splits, train_frac=train_frac, test_frac=test_frac
        )
    except ValueError as exc:  # what is left: too few bars for the splits
        raise ApplicationError(str(exc), field="n_splits") from None
    with transaction.atomic():
        services.job_quota_check(user=user, lock=True)
        job = OptimizationJob.objects.create(
            name=(name or f"Walk-forward {strategy} on {dataset.name}")[:100],
            kind=OptimizationJob.Kind.WALK_FORWARD,
            strategy=strategy,
            date_from=start_at,
            date_to=end_at,
            parameter_grid=grid,
            objective=objective,
            costs=valid_costs,
            chunk_size=1,
            total_runs=n_splits,
            options={
                "n_splits": n_splits,
                "train_frac": float(train_frac),
                "test_frac": float(test_frac),
                "window": window,
                "grid_size": sweep.grid_size(grid),
            },
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        job.datasets.set([dataset])
        if start:
            services.job_start(job=job)
    return job


def walk_forward_job_from_sweep(*, user, job: OptimizationJob, **options) -> OptimizationJob:
    """Walk-forward of a sweep's grid on its first dataset (the sweep's objective and costs)."""
    if job.kind != OptimizationJob.Kind.GRID:
        raise ApplicationError(f"job {job.id} is not a grid sweep", field="job")
    dataset = job.datasets.order_by("id").first()
    return walk_forward_job_create(
        user=user, strategy=job.strategy, dataset_id=dataset.id, parameter_grid=job.grid,
        objective=job.objective, costs=job.costs, date_from=job.date_from, date_to=job.date_to,
        **options,
    )  # fmt: skip


# --- execution ---------------------------------------------------------------------------------


def _job_data(job: OptimizationJob, dataset: Dataset, strategy):
    """The dataset (and companions) of a job, cut to its date range."""
    start = int(job.date_from.timestamp()) if job.date_from else None
    end = int(job.date_to.timestamp()) if job.date_to else None

    def load(ds):
        data = dataset_market_data(ds)
        return data.slice_time(start, end) if start or end else data

    companions = {k: load(dataset_companion(dataset, k)) for k in strategy.companion_kinds}
    return load(dataset), companions or None


def _mc_args(job: OptimizationJob) -> dict:
    o = job.options
    return dict(sims=o["sims"], trades_per_sim=o["trades_per_sim"], mode=o["mode"], seed=o["seed"])


def chunk_compute(*, job: OptimizationJob, chunk) -> tuple[int, int, dict]:
    """(units done, units failed, partial result) of one Monte Carlo / walk-forward chunk."""
    if job.kind == OptimizationJob.Kind.MONTE_CARLO:
        final, dd, streak, _eq, _cps = mc.simulate_paths(
            np.asarray(job.options["returns"]), start=chunk.start, stop=chunk.stop,
            **_mc_args(job),
        )  # fmt: skip
        return (
            chunk.size,
            0,
            {"final": final.tolist(), "dd": dd.tolist(), "streak": streak.tolist()},
        )
    if job.kind == OptimizationJob.Kind.WALK_FORWARD:
        o = job.options
        try:
            strategy = get_strategy(job.strategy)
            data, companions = _job_data(job, chunk.dataset, strategy)
            windows = walk_forward.walk_forward_windows(
                len(data), n_splits=o["n_splits"], train_frac=o["train_frac"],
                test_frac=o["test_frac"], anchored=o["window"] == "anchored",
            )  # fmt: skip
            params = sweep.params_range(job.grid, 0, sweep.grid_size(job.grid))
            fold = walk_forward.run_fold(
                strategy, data, companions, params, Costs(**job.costs),
                objective=job.objective, fold=windows[chunk.start], index=chunk.start,
            )  # fmt: skip
            return 1, 0, _clean(fold.as_dict())
        except Exception as exc:  # recorded on the fold, shown to the operator
            log.exception("walk-forward job %s fold %s failed", job.id, chunk.start)
            return 1, 1, {"index": chunk.start, "error": f"{type(exc).__name__}: {exc}"}
    raise ValueError(f"job {job.id} has no chunk computation for kind {job.kind!r}")


def _mc_finalize(job: OptimizationJob, parts: list[dict]) -> dict:
    final = np.concatenate([p["final"] for p in parts])
    dd = np.concatenate([p["dd"] for p in parts])
    streak = np.concatenate([p["streak"] for p in parts])
    profile, intervals = mc.summarize(
        final, dd, streak, trades_per_sim=job.options["trades_per_sim"]
    )
    _f, _d, _s, eq_at, steps = mc.simulate_paths(np.asarray(job.options["returns"]),
                                                 **_mc_args(job))  # fmt: skip
    return {
        "profile": profile.as_dict(),
        "intervals": intervals,
        "confidence_level": 0.95,
        "steps": steps.tolist(),
        "bands": {str(p): v for p, v in mc.equity_bands(eq_at).items()},
        "histograms": {
            "final_return": mc.histogram(final),
            "max_drawdown": mc.histogram(dd),
            "max_loss_streak": mc.histogram(streak, bins=int(min(30, streak.max() + 1))),
        },
        "n_trades": len(job.options["returns"]),
    }


def _wf_finalize(job: OptimizationJob, parts: list[dict]) -> dict:
    folds = sorted(parts, key=lambda p: p.get("index", 0))
    scored = [f for f in folds if "error" not in f]
    summary = walk_forward.walk_forward_efficiency(scored, job.objective) if scored else {}
    return {"folds": folds, "summary": summary, "window": job.options["window"]}


def job_finalize_evaluation(*, job: OptimizationJob) -> bool:
    """Combine the chunks' partial results and finish the job, exactly once."""
    parts = list(job.chunks.order_by("index").values_list("result", flat=True))
    error = ""
    evaluation = None
    try:
        if any(p is None for p in parts):
            raise ValueError("a chunk finished without a result")
        if job.kind == OptimizationJob.Kind.MONTE_CARLO:
            evaluation = _mc_finalize(job, parts)
        else:
            evaluation = _wf_finalize(job, parts)
            if not evaluation["summary"]:
                error = "every fold failed; first error: " + parts[0].get("error", "n/a")
    except Exception as exc:
        log.exception("finalizing job %s failed", job.id)
        error = f"{type(exc).__name__}: {exc}"
    status = JobStatus.FAILED if error else JobStatus.SUCCEEDED
    return bool(
        OptimizationJob.objects.filter(
            id=job.id, status=JobStatus.RUNNING, chunks_remaining=0
        ).update(
            status=status,
            evaluation=_clean(evaluation),
            error=error,
            finished_at=timezone.now(),
        )
    )


# --- overfitting of a sweep ------------------------------------------------------------------


def job_overfitting_compute(*, job: OptimizationJob) -> dict:
    """PBO and deflated Sharpe of a finished sweep, on the dataset of its best run.

    Configurations = the sweep's succeeded runs on that dataset (every k-th by grid index
    above OVERFITTING_MAX_CONFIGS, an unbiased sample, plus the best run); their per-period
    returns are recomputed with the engine (per bar, or coarser periods on long data); the
    number of trials for the DSR is the number of runs on that dataset.
    """
    best = job.best_run
    if best is None:
        raise ApplicationError(f"job {job.id} has no best run to assess", field="job")
    runs = list(
        OptimizationRun.objects.filter(
            job=job, dataset_id=best.dataset_id, status=OptimizationRun.Status.SUCCEEDED
        )
        .order_by("grid_index")
        .values_list("id", "params")
    )
    n_trials = len(runs)
    step = max(1, math.ceil(n_trials / OVERFITTING_MAX_CONFIGS))
    sample = runs[::step]
    if best.id not in {r[0] for r in sample}:
        sample.append((best.id, best.params))
    strategy = get_strategy(job.strategy)
    from apps.optimization.services import _context

    ctx = _context(job, best.dataset, strategy)
    matrix, bars_per_period = overfitting.returns_matrix(
        strategy, ctx, [p for _i, p in sample], Costs(**job.costs)
    )
    col = [r[0] for r in sample].index(best.id)
    report = overfitting.overfitting_report(
        matrix, col, periods_per_year=bars_per_year(best.dataset.timeframe) / bars_per_period
    )
    report.update(
        dataset_id=best.dataset_id, best_run=best.id, n_trials=n_trials, sampled_every=step,
        objective=job.objective,
    )  # fmt: skip
    return _clean(report)


def job_overfitting(*, job: OptimizationJob, compute: bool = True) -> dict | None:
    """The cached overfitting figures of a finished sweep (computed and cached if missing)."""
    cached = (job.evaluation or {}).get("overfitting")
    if cached is not None or not compute:
        return cached
    if job.kind != OptimizationJob.Kind.GRID or job.status != JobStatus.SUCCEEDED:
        return None
    try:
        report = job_overfitting_compute(job=job)
    except ApplicationError:
        return None
    except Exception as exc:
        log.exception("overfitting figures of job %s failed", job.id)
        report = {"error": f"{type(exc).__name__}: {exc}"}
    with transaction.atomic():
        fresh = OptimizationJob.objects.select_for_update().get(id=job.id)
        fresh.evaluation = {**(fresh.evaluation or {}), "overfitting": report}
        fresh.save(update_fields=["evaluation"])
    job.evaluation = fresh.evaluation
    return report


def job_overfitting_safe(*, job_id: int) -> None:
    """At a sweep's finalize: never let the figures fail the job."""
    try:
        job_overfitting(job=OptimizationJob.objects.select_related("best_run").get(id=job_id))
    except Exception:
        log.exception("overfitting figures of job %s failed", job_id)


__all__ = [
    "METRIC_NAMES",
    "METRICS",
    "chunk_compute",
    "job_finalize_evaluation",
    "job_overfitting",
    "monte_carlo_job_create",
    "run_backtest",
    "run_trades",
    "walk_forward_job_create",
    "walk_forward_job_from_sweep",
]
