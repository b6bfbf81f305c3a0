"""The best-parameter table: a job's top runs per slice beside the production parameters,
measured on the same data.
"""

from __future__ import annotations

import math

from apps.market.models import Dataset
from apps.optimization.gateway import params_backtest, result_metrics
from apps.optimization.models import OptimizationJob
from apps.optimization.selectors.jobs import job_best_runs, job_unranked_counts
from apps.optimization.selectors.neighbourhood import (
    RANKINGS,
    job_robust_runs,
    runs_neighbourhood,
)
from apps.optimization.selectors.slices import job_slices
from apps.strategies.models import StrategyConfig
from apps.strategies.selectors.configs import strategy_config_current
from backtestlab.engine.metrics import METRICS
from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies import get_strategy
from backtestlab.errors import ApplicationError

_production_cache: dict[tuple, dict] = {}

_PRODUCTION_CACHE_SIZE = 256


def production_metrics(job: OptimizationJob, dataset: Dataset, config: StrategyConfig) -> dict:
    """Metrics of the production parameters on the job's dataset, date range and costs,
    through the engine; cached per process by (job, dataset, config version)."""
    # created_at and the checksum keep the key unique even where ids are reused (a database
    # reset, tests); a config version is never edited, so nothing else can go stale.
    key = (job.id, dataset.id, dataset.checksum, config.id, config.version, config.created_at)
    cached = _production_cache.get(key)
    if cached is not None:
        return cached
    strategy = get_strategy(job.strategy)
    try:
        params = strategy.parameter_space().validate_params(config.params or {})
        metrics = result_metrics(params_backtest(job, dataset, params))
        entry = {"params": params, "metrics": metrics, "error": ""}
    except ParameterError as exc:
        entry = {"params": config.params, "metrics": {}, "error": f"invalid parameters: {exc}"}
    while len(_production_cache) >= _PRODUCTION_CACHE_SIZE:
        _production_cache.pop(next(iter(_production_cache)))
    _production_cache[key] = entry
    return entry


def improvement_pct(value: float | None, baseline: float | None, metric: str) -> float | None:
    """How much better ``value`` is than ``baseline`` in % of |baseline| (negative: worse);
    None when that is not a finite number (a baseline of 0, an unbounded value)."""
    if value is None or baseline is None or baseline == 0:
        return None
    diff = value - baseline if METRICS[metric].higher_is_better else baseline - value
    pct = 100.0 * diff / abs(baseline)
    return pct if math.isfinite(pct) else None  # an unbounded value: no % (∞ is just better)


def job_best_table(*, job: OptimizationJob, limit: int = 10, rank: str = "objective") -> list[dict]:
    """The best-parameter table: per slice (symbol/timeframe dataset × group), the top
    ``limit`` ranked runs by the objective (ties: lowest run id) or, ``rank="robust"``, by
    their neighbourhood (:func:`~apps.optimization.selectors.neighbourhood.job_robust_runs`),
    the current production parameters of that (strategy, symbol, timeframe, pattern) with
    their objective on the same data, and each run's improvement over them in %. Once the job
    is over, every row has its neighbourhood's worst and mean (``neighbour_worst``/``_mean``)."""
    if rank not in RANKINGS:
        raise ApplicationError(
            f"rank must be one of {', '.join(RANKINGS)}, got {rank!r}", field="rank"
        )
    table = []
    objective = job.objective
    for s in job_slices(job):
        if rank == "robust":
            runs = job_robust_runs(job=job, limit=limit, dataset_id=s.dataset.id, params=s.group)
        else:
            runs = job_best_runs(job=job, limit=limit, dataset_id=s.dataset.id, params=s.group)
        if job.is_active:
            scores = {}
        elif rank == "robust":  # ranked by it: the runs carry their scores already
            scores = {r.id: (r.neighbour_worst, r.neighbour_mean) for r in runs}
        else:
            scores = runs_neighbourhood(job, runs)
        config = strategy_config_current(
            job.strategy, s.dataset.symbol, s.dataset.timeframe, s.group_label
        )
        production = None
        if config is not None:
            measured = production_metrics(job, s.dataset, config)
            production = {
                "config_id": config.id,
                "version": config.version,
                "params": measured["params"],
                "metrics": measured["metrics"],
                "value": measured["metrics"].get(objective),
                "error": measured["error"],
                "created_at": config.created_at,
            }
        baseline = production["value"] if production else None
        table.append(
            {
                "slice": s,
                "production": production,
                # counted once the job is over (the running job's page polls every 2 s)
                "unranked": None
                if job.is_active
                else job_unranked_counts(job=job, dataset_id=s.dataset.id, params=s.group),
                "rows": [
                    {
                        "run": r,
                        "value": getattr(r, objective),
                        "improvement_pct": improvement_pct(
                            getattr(r, objective), baseline, objective
                        ),
                        **_neighbourhood(scores.get(r.id)),
                    }
                    for r in runs
                ],
            }
        )
    return table


def _neighbourhood(score: tuple | None) -> dict:
    worst, mean = score if score is not None else (None, None)
    return {"neighbour_worst": worst, "neighbour_mean": mean}
