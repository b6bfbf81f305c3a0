"""Walk-forward jobs: re-optimise on each training window, score on the next test window."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from apps.optimization.models import OptimizationJob
from apps.optimization.ranking import DEFAULT_MIN_TRADES, MAX_MIN_TRADES
from apps.optimization.services.jobs import job_datasets_pin, job_start
from apps.optimization.services.quotas import job_quota_check
from apps.optimization.services.validation import (
    costs_validate,
    date_validate,
    grid_validate,
    int_option,
    name_option,
    objective_validate,
    strategy_datasets_validate,
)
from backtestlab.engine import sweep
from backtestlab.engine.evaluation import walk_forward
from backtestlab.engine.strategies import get_strategy
from backtestlab.errors import ApplicationError


def walk_forward_job_create(
    *,
    user,
    strategy: str,
    dataset_id: int | None = None,
    parameter_grid: Any = None,
    dataset_ids: Sequence[int] | None = None,
    objective: str = "sharpe",
    costs: Any = None,
    n_splits: int = 5,
    train_frac: float = 0.7,
    test_frac: float = 0.3,
    window: str = "rolling",
    pick: str = "objective",
    min_trades: Any = DEFAULT_MIN_TRADES,
    date_from: Any = None,
    date_to: Any = None,
    name: str = "",
    start: bool = True,
) -> OptimizationJob:
    """A walk-forward job: optimise the grid on each train window, test on the next window, on
    every dataset given (``dataset_id``, or several as ``dataset_ids``): each dataset has its
    own ``n_splits`` folds; the result has per-dataset and pooled out-of-sample figures. Each
    fold picks, among the runs with at least ``min_trades`` trades, the best objective
    (``pick="objective"``) or the best neighbourhood (``pick="robust"``, the best table's
    robust rule)."""
    job_quota_check(user=user, lock=False)
    try:
        strategy_obj = get_strategy(strategy)
    except Exception as exc:
        raise ApplicationError(getattr(exc, "message", str(exc)), field="strategy") from None
    ids = [dataset_id] if dataset_ids is None else list(dataset_ids)
    datasets = strategy_datasets_validate(ids, strategy_obj)
    grid = grid_validate(strategy, parameter_grid)
    objective = objective_validate(objective)
    valid_costs = costs_validate(costs)
    n_splits = int_option("n_splits", n_splits, 1, 50)
    min_trades = int_option("min_trades", min_trades, 1, MAX_MIN_TRADES)
    if pick not in walk_forward.PICKS:
        raise ApplicationError(
            f"pick must be one of {', '.join(walk_forward.PICKS)}, got {pick!r}", field="pick"
        )
    name = name_option(name)
    if window not in walk_forward.WINDOW_MODES:
        raise ApplicationError(
            f"window must be one of {', '.join(walk_forward.WINDOW_MODES)}, got {window!r}",
            field="window",
        )
    start_at = date_validate("date_from", date_from)
    end_at = date_validate("date_to", date_to)
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
    for dataset in datasets:
        try:
            walk_forward.walk_forward_windows(
                dataset.rows, n_splits=n_splits, train_frac=train_frac, test_frac=test_frac
            )
        except ValueError as exc:  # what is left: too few bars for the splits
            raise ApplicationError(f"{dataset.name}: {exc}", field="n_splits") from None
    on = datasets[0].name if len(datasets) == 1 else f"{len(datasets)} datasets"
    with transaction.atomic():
        job_quota_check(user=user, lock=True)
        job = OptimizationJob.objects.create(
            name=(name or f"Walk-forward {strategy} on {on}")[:100],
            kind=OptimizationJob.Kind.WALK_FORWARD,
            strategy=strategy,
            date_from=start_at,
            date_to=end_at,
            parameter_grid=grid,
            objective=objective,
            min_trades=min_trades,
            costs=valid_costs,
            chunk_size=1,
            total_runs=n_splits * len(datasets),
            options={
                "n_splits": n_splits,
                "train_frac": float(train_frac),
                "test_frac": float(test_frac),
                "window": window,
                "pick": pick,
                "grid_size": sweep.grid_size(grid),
            },
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        job_datasets_pin(job, datasets)
        if start:
            job_start(job=job)
    return job


def walk_forward_job_from_sweep(*, user, job: OptimizationJob, **options) -> OptimizationJob:
    """Walk-forward of a sweep's grid on every dataset of the sweep (its objective, costs,
    dates and min_trades)."""
    if job.kind != OptimizationJob.Kind.GRID:
        raise ApplicationError(f"job {job.id} is not a grid sweep", field="job")
    ids = list(job.datasets.order_by("id").values_list("id", flat=True))
    return walk_forward_job_create(
        user=user, strategy=job.strategy, dataset_ids=ids, parameter_grid=job.grid,
        objective=job.objective, costs=job.costs, min_trades=job.min_trades,
        date_from=job.date_from, date_to=job.date_to,
        **options,
    )  # fmt: skip
