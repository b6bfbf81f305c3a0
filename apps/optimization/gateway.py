"""The only way from Django rows to the engine: a job's market data, its prepared strategy
context (cached per process), a stored run re-run, and engine values made JSON-safe.

Runs are deterministic and datasets immutable once used, so a run re-run here equals what was
stored; every page, API, service and command that needs equity, trades or a context comes here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from apps.market.models import Dataset
from apps.market.selectors import dataset_companion, dataset_market_data
from apps.market.storage import frame_cache
from apps.optimization.models import (
    JobCompanion,
    OptimizationJob,
    OptimizationRun,
)
from backtestlab.engine import sweep
from backtestlab.engine.evaluation.trades import trades_from_backtest
from backtestlab.engine.metrics import compute
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.renderers import json_number


def json_safe(x: Any) -> Any:
    """Strict-JSON-safe, recursively: numpy values -> Python, NaN -> None, an infinity ->
    ``"Infinity"`` / ``"-Infinity"`` (:func:`backtestlab.api.json_number`; read back with
    :func:`backtestlab.api.json_float`)."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return json_number(x)
    return x


def metric_or_none(value: Any) -> float | None:
    """A metric as the lab keeps it: None where undefined (NaN); ``inf`` (an unbounded ratio)
    stays, ranked above every finite value and shown as "∞" (JSON: see
    :func:`backtestlab.api.json_number`)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def metric_text(value: float | None, digits: int = 4) -> str:
    """A metric in a sentence: ``digits`` significant digits, "∞" for an unbounded ratio,
    "n/a" where undefined."""
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}g}"


def result_metrics(result) -> dict[str, float | None]:
    """Every metric of a detailed backtest (the metrics module's one definition), NaN as None."""
    return {name: metric_or_none(v) for name, v in compute(result).as_dict().items()}


def window_data(dataset: Dataset, date_from=None, date_to=None):
    """A dataset's engine series, cut to ``[date_from, date_to)`` when given."""
    data = dataset_market_data(dataset)
    start = int(date_from.timestamp()) if date_from else None
    end = int(date_to.timestamp()) if date_to else None
    return data.slice_time(start, end) if start or end else data


def job_companion(job: OptimizationJob, dataset: Dataset, kind: str) -> Dataset | None:
    """The companion series the job fixed at creation (a job stored before companions were
    fixed: the one the symbol has now)."""
    pin = (
        JobCompanion.objects.filter(job_id=job.id, dataset_id=dataset.id, kind=kind)
        .select_related("companion")
        .first()
    )
    companion = pin.companion if pin else dataset_companion(dataset, kind)
    if companion is None:
        raise LookupError(
            f"the {kind} series of {dataset.symbol} this job reads is gone (deleted after the "
            f"job was created); import {dataset.symbol} {kind} again and re-run the job"
        )
    return companion


def job_data(job: OptimizationJob, dataset: Dataset, strategy):
    """The dataset and the companion series the strategy reads, cut to the job's date range."""
    companions = {
        kind: window_data(job_companion(job, dataset, kind), job.date_from, job.date_to)
        for kind in strategy.companion_kinds
    }
    return window_data(dataset, job.date_from, job.date_to), companions or None


def run_backtest(run: OptimizationRun):
    """(strategy, prepared context, costs, BacktestResult) of a stored run (deterministic)."""
    job = run.job
    strategy = get_strategy(job.strategy)
    ctx = job_context(job, run.dataset, strategy)
    costs = Costs(**job.costs)
    return strategy, ctx, costs, strategy.run(ctx, run.params, costs)


def run_trades(run: OptimizationRun):
    """The run's trades as seed-002 TradeResult records (exit time, fraction of equity)."""
    *_, result = run_backtest(run)
    return trades_from_backtest(result, underlying=run.dataset.symbol)


_ctx_cache: dict[tuple, Any] = {}
_CTX_CACHE_SIZE = 4


def context_cache_clear() -> None:
    """Forget the prepared contexts (and loaded frames) of this process."""
    _ctx_cache.clear()
    frame_cache.clear()


def job_context(job: OptimizationJob, dataset: Dataset, strategy):
    """The strategy's prepared context for a dataset (and date range), once per process."""
    companions = [job_companion(job, dataset, kind) for kind in strategy.companion_kinds]
    key = (
        job.strategy,
        dataset.checksum,
        tuple(c.checksum for c in companions),
        job.date_from,
        job.date_to,
    )
    ctx = _ctx_cache.get(key)
    if ctx is None:
        ctx = strategy.prepare(*job_data(job, dataset, strategy))
        while len(_ctx_cache) >= _CTX_CACHE_SIZE:
            _ctx_cache.pop(next(iter(_ctx_cache)))
        _ctx_cache[key] = ctx
    return ctx


def job_prepare(job: OptimizationJob, dataset: Dataset) -> None:
    """Load the job's data on ``dataset`` and prepare its strategy (cached for the runs)."""
    job_context(job, dataset, get_strategy(job.strategy))


def params_backtest(job: OptimizationJob, dataset: Dataset, params: dict):
    """One detailed backtest of ``params`` on the job's dataset, date range and costs."""
    strategy = get_strategy(job.strategy)
    return strategy.run(job_context(job, dataset, strategy), params, Costs(**job.costs))


def params_metrics(job: OptimizationJob, dataset: Dataset, param_list: list[dict]):
    """The metrics matrix (one row per parameter set, METRIC_NAMES order) of the sweep path."""
    strategy = get_strategy(job.strategy)
    ctx = job_context(job, dataset, strategy)
    return sweep.run_params(strategy, ctx, param_list, Costs(**job.costs))
