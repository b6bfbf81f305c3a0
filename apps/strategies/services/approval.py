"""Evaluate a run for approval: statistics, Monte Carlo, psychology, the computed gates, stage.

One service, :func:`strategy_evaluate`, used by the job and strategy pages, the API and
``manage.py strategy_summary``.  Every gate the seed hard-codes comes from a real test on the
run (thresholds from the ApprovalConfig in force):

* regimes - the data's regime labels over the trades' span;
* parameter sensitivity - the objective drop around the run in its sweep's grid (the run's
  own job; a job that is not a multi-value sweep has no neighbourhood and fails the gate);
* walk-forward - the latest finished walk-forward job of the same strategy and dataset, or,
  when there is none, one computed now on the run's sweep grid (5 rolling folds, 70/30);
* stress - fees x2, slippage x2, signals one bar late and all three, on the job's objective;
* checks - the strategy's look-ahead and warm-up checks (``backtestlab.engine.checks``) on the
  run's own data, with its parameters and a few samples: a strategy that reads the future or
  needs more history than it declares stays in RESEARCH.
"""

from __future__ import annotations

import math

import numpy as np

from apps.optimization.gateway import job_data, json_safe, run_backtest
from apps.optimization.models import JobStatus, OptimizationJob, OptimizationRun
from apps.optimization.ranking import no_ranked_run
from apps.strategies.models import StrategyApproval
from apps.strategies.selectors.approvals import approval_config_current
from backtestlab.engine import checks, sweep
from backtestlab.engine.data import MarketData
from backtestlab.engine.evaluation import approval as engine_approval
from backtestlab.engine.evaluation import sensitivity, stress, walk_forward
from backtestlab.engine.evaluation.monte_carlo import run_monte_carlo
from backtestlab.engine.evaluation.psychology import compute_psychology_score
from backtestlab.engine.evaluation.regimes import RegimeCoverage, trades_regime_coverage
from backtestlab.engine.evaluation.trades import (
    compute_strategy_stats,
    pnl_fractions,
    trades_from_backtest,
)
from backtestlab.engine.metrics import METRICS, compute
from backtestlab.errors import ApplicationError
from backtestlab.renderers import json_float

WALK_FORWARD_MAX_GRID = 5000


def _regimes(ctx, result, cfg) -> tuple[RegimeCoverage, dict]:
    data = getattr(ctx, "candles", None) or getattr(ctx, "data", None)
    if not isinstance(data, MarketData):
        cov = RegimeCoverage(False, False, False)
        return cov, {"error": "this strategy's data carries no regime labels"}
    cov = trades_regime_coverage(data, result, min_share=cfg.min_regime_share)
    return cov, cov.as_dict()


def _sensitivity(run: OptimizationRun, cfg) -> tuple[bool, dict]:
    job = run.job
    grid = job.grid
    if job.kind != OptimizationJob.Kind.GRID or sweep.grid_size(grid) < 2:
        return False, {"error": "the run's job is not a sweep: no grid neighbourhood to test"}
    # Ranked runs only: a neighbour with too few trades is a cliff (the grid's worst value),
    # as in the best table's neighbourhood scores.
    values = np.full(sweep.grid_size(grid), np.nan)
    rows = OptimizationRun.objects.filter(
        job=job, dataset_id=run.dataset_id, status=OptimizationRun.Status.SUCCEEDED,
        n_trades__gte=job.min_trades,
    ).values_list("grid_index", job.objective)  # fmt: skip
    for index, value in rows:
        if value is not None:
            values[index] = value
    if np.isnan(values[run.grid_index]):
        return False, {"error": f"the run has no {job.objective} value or too few trades"}
    res = sensitivity.neighbourhood_drop(
        grid, values, higher_is_better=METRICS[job.objective].higher_is_better,
        best_index=run.grid_index,
    )  # fmt: skip
    ok = res.drop <= cfg.max_neighbour_drop  # NaN (no neighbours) is not ok
    higher = METRICS[job.objective].higher_is_better
    worst, mean = sensitivity.neighbourhood_scores(grid, values, higher_is_better=higher)
    detail = {
        **res.as_dict(), "objective": job.objective, "threshold": cfg.max_neighbour_drop,
        "neighbourhood_worst": float(worst[run.grid_index]),
        "neighbourhood_mean": float(mean[run.grid_index]),
    }  # fmt: skip
    if not res.neighbour_indexes:
        detail["error"] = "no numeric parameter with neighbours in the grid"
    return ok, detail


def _walk_forward(run: OptimizationRun, strategy, costs, cfg) -> tuple[bool, dict]:
    job = run.job
    wf_job = (
        OptimizationJob.objects.filter(
            kind=OptimizationJob.Kind.WALK_FORWARD,
            strategy=job.strategy,
            datasets=run.dataset_id,
            status=JobStatus.SUCCEEDED,
        )  # fmt: skip
        .order_by("-finished_at", "-id")
        .first()
    )
    if wf_job is not None:
        evaluation = wf_job.evaluation or {}
        # The run's own dataset's out-of-sample figures (older jobs: the one summary).
        mine = [d for d in evaluation.get("per_dataset") or [] if d["dataset_id"] == run.dataset_id]
        summary = mine[0] if mine else evaluation.get("summary") or {}
        source = {"job": wf_job.id}
    else:
        grid = job.grid
        if sweep.grid_size(grid) > WALK_FORWARD_MAX_GRID:
            return False, {"error": "grid too large to walk forward on demand; run a job"}
        data, companions = job_data(job, run.dataset, strategy)
        try:
            res = walk_forward.walk_forward(
                strategy, data, sweep.params_range(grid, 0, sweep.grid_size(grid)), costs,
                objective=job.objective, companions=companions, min_trades=job.min_trades,
            )  # fmt: skip
        except ValueError as exc:
            return False, {"error": str(exc)}
        summary = res.summary
        source = {"computed": "5 rolling folds, 70/30, on the run's sweep grid"}
    wfe = json_float(summary.get("wfe"))
    share = summary.get("oos_positive_share")
    ok = (
        wfe is not None and math.isfinite(wfe) and wfe >= cfg.min_walk_forward_efficiency
        and share is not None and share >= cfg.min_oos_positive_share
    )  # fmt: skip
    return ok, {
        **source, "summary": summary, "min_wfe": cfg.min_walk_forward_efficiency,
        "min_oos_positive_share": cfg.min_oos_positive_share,
    }  # fmt: skip


def _checks(run: OptimizationRun, strategy) -> tuple[bool, dict]:
    data, companions = job_data(run.job, run.dataset, strategy)
    try:
        bars = strategy.bars(strategy.prepare(data, companions))
        sets = checks.sample_param_sets(
            strategy, max_warmup=max(len(bars) // 4, 1), bar_seconds=bars.bar_seconds
        )
        params = strategy.parameter_space().validate_params(run.params)
        if params not in sets:
            sets.append(params)
        result = checks.check_strategy(strategy, data, companions, param_sets=sets)
    except ValueError as exc:
        return False, {"error": f"the checks could not run: {exc}"}
    return result.passed, {
        "lookahead": result.lookahead.message,
        "warmup": result.warmup.message,
        "lines": result.lines(),
    }


def strategy_evaluate(
    *, run: OptimizationRun, trigger: str, user=None, job: OptimizationJob | None = None
) -> StrategyApproval:
    """Evaluate ``run`` and store the decision (the caller checked the user may see it)."""
    if run.status != OptimizationRun.Status.SUCCEEDED:
        raise ApplicationError(f"run {run.id} failed; pick a succeeded run", field="run")
    config_row = approval_config_current()
    cfg = config_row.as_engine() if config_row else engine_approval.ApprovalConfig()
    strategy, ctx, costs, result = run_backtest(run)
    trades = trades_from_backtest(result, underlying=run.dataset.symbol)
    if not trades:
        raise ApplicationError(
            f"run {run.id} closed no trade, so it cannot be evaluated for approval; pick a run "
            "with trades (n_trades > 0)",
            field="run",
        )
    # The one maximum drawdown: the equity curve's, as on the run page and the best table.
    curve_dd = compute(result).max_drawdown_pct / 100.0
    stats = compute_strategy_stats(trades, max_drawdown=curve_dd)
    mc = run_monte_carlo(pnl_fractions(trades), sims=cfg.mc_sims, seed=cfg.mc_seed)
    psych = compute_psychology_score(stats, mc.profile)
    regimes, regimes_detail = _regimes(ctx, result, cfg)
    sens_ok, sens_detail = _sensitivity(run, cfg)
    wf_ok, wf_detail = _walk_forward(run, strategy, costs, cfg)
    st = stress.stress_test(strategy, ctx, run.params, costs, objective=run.job.objective)
    st_ok = st.passed(
        min_fraction=cfg.stress_min_fraction,
        min_fraction_combined=cfg.stress_min_fraction_combined,
    )
    checks_ok, checks_detail = _checks(run, strategy)
    decision = engine_approval.evaluate_strategy(
        stats, mc.profile, psych, regimes, sens_ok, wf_ok, st_ok, cfg, checks_ok=checks_ok
    )
    summary = engine_approval.strategy_summary(decision)
    gates = {
        "stats": stats.as_dict(),
        "variance": mc.profile.as_dict(),
        "psychology": psych.as_dict(),
        "regimes": regimes_detail,
        "param_sensitivity": {"ok": sens_ok, **sens_detail},
        "walk_forward": {"ok": wf_ok, **wf_detail},
        "checks": {"ok": checks_ok, **checks_detail},
        "stress_test": {
            "ok": st_ok,
            **st.as_dict(),
            "min_fraction": cfg.stress_min_fraction,
            "min_fraction_combined": cfg.stress_min_fraction_combined,
        },  # fmt: skip
    }
    return StrategyApproval.objects.create(
        strategy=run.job.strategy,
        job=job or run.job,
        run=run,
        params=run.params,
        stage=decision.stage,
        reason=decision.reason,
        rules=json_safe(list(decision.rules)),
        summary=json_safe(summary),
        gates=json_safe(gates),
        config=json_safe(cfg.as_dict()),
        config_ref=config_row,
        trigger=trigger,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


def job_evaluation_run(job: OptimizationJob) -> OptimizationRun:
    """The run a job's approval evaluates: a sweep's best run, a Monte Carlo job's source."""
    if job.kind == OptimizationJob.Kind.MONTE_CARLO:
        run = OptimizationRun.objects.filter(id=job.options.get("source_run")).first()
    elif job.kind == OptimizationJob.Kind.GRID:
        run = job.best_run
        if run is None and not job.is_active:
            raise ApplicationError(
                f"job {job.id} has {no_ranked_run(job.min_trades, job.objective)}, so there is "
                "no best run to evaluate",
                field="job",
            )
    else:
        run = None
    if run is None:
        raise ApplicationError(
            f"job {job.id} has no run to evaluate (a finished sweep's best run or a Monte Carlo "
            "job's source run)",
            field="job",
        )
    return run


def job_evaluate(*, job: OptimizationJob, trigger: str, user=None) -> StrategyApproval:
    return strategy_evaluate(run=job_evaluation_run(job), trigger=trigger, user=user, job=job)
