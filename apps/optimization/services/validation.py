"""Validation of what a job is made of: strategy, datasets, grid, objective, costs and dates.

Every surface (REST, lab form, admin, beat templates) creates jobs through these checks; each
refusal is an ApplicationError naming the field and what to send instead.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from apps.market.models import Dataset
from apps.market.selectors import dataset_companion
from backtestlab.engine.metrics import METRICS
from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.errors import ApplicationError

# A job's description is free text shown on its page and returned in every job list item:
# capped on every surface (API, lab form, admin) by description_validate.
DESCRIPTION_MAX_LENGTH = 2000

COST_BOUNDS = {
    "commission_pct": (0.0, 5.0),
    "slippage_pct": (0.0, 5.0),
    "initial_equity": (1.0, 1e12),
}


def setting(name: str):
    return settings.BACKTESTLAB[name]


def _finite_number(field: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApplicationError(f"{field} must be a number, got {value!r}", field=field)
    if not math.isfinite(value):
        raise ApplicationError(f"{field} must be a finite number, got {value!r}", field=field)
    if not low <= value <= high:
        raise ApplicationError(
            f"{field} must be between {low:g} and {high:g}, got {value!r}", field=field
        )
    return float(value)


def costs_validate(costs: Mapping[str, Any] | None) -> dict[str, float]:
    if costs is None:
        costs = {}
    if not isinstance(costs, Mapping):
        raise ApplicationError(
            "costs must be an object like {'commission_pct': 0.1, 'slippage_pct': 0.05}",
            field="costs",
        )
    unknown = set(costs) - set(COST_BOUNDS)
    if unknown:
        raise ApplicationError(
            f"unknown cost field {sorted(unknown)[0]!r}; known: {', '.join(COST_BOUNDS)}",
            field="costs",
        )
    defaults = Costs()
    result = {}
    for name, (low, high) in COST_BOUNDS.items():
        value = costs.get(name, getattr(defaults, name))
        result[name] = _finite_number(f"costs.{name}", value, low, high)
    return result


def objective_validate(objective: Any) -> str:
    choices = [name for name, info in METRICS.items() if info.objective]
    if not isinstance(objective, str) or objective not in choices:
        raise ApplicationError(
            f"unknown objective {objective!r}; choose one of {', '.join(choices)}",
            field="objective",
        )
    return objective


def strategy_datasets_validate(dataset_ids: Any, strategy) -> list[Dataset]:
    data_kind = strategy.data_kind
    if not isinstance(dataset_ids, list | tuple) or not dataset_ids:
        raise ApplicationError(
            "datasets must be a non-empty list of dataset ids, e.g. [1, 2]", field="datasets"
        )
    ids = []
    for value in dataset_ids:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApplicationError(
                f"datasets must contain integer ids, got {value!r}", field="datasets"
            )
        if not 1 <= value < 2**63:  # beyond a database integer: no such dataset
            raise ApplicationError(
                f"dataset {value} does not exist; list the datasets at /api/datasets/",
                field="datasets",
            )
        if value not in ids:
            ids.append(value)
    found = {ds.id: ds for ds in Dataset.objects.filter(id__in=ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ApplicationError(
            f"dataset {missing[0]} does not exist; list the datasets at /api/datasets/",
            field="datasets",
        )
    wrong = [found[i] for i in ids if found[i].kind != data_kind]
    if wrong:
        raise ApplicationError(
            f"dataset {wrong[0].id} ({wrong[0].name}) holds {wrong[0].kind}, "
            f"but this strategy needs {data_kind} data",
            field="datasets",
        )
    datasets = [found[i] for i in ids]
    allowed = strategy.timeframes
    for ds in datasets:
        if allowed is not None and ds.timeframe not in allowed:
            raise ApplicationError(
                f"dataset {ds.id} ({ds.name}) has {ds.timeframe} bars, but {strategy.key} runs "
                f"on {', '.join(allowed)} candles only; pick such a dataset "
                "(manage.py make_synthetic --with-minutes makes 1m candles)",
                field="datasets",
            )
        for kind in strategy.companion_kinds:
            if dataset_companion(ds, kind) is None:
                raise ApplicationError(
                    f"dataset {ds.id} ({ds.name}) has no {kind} series for {ds.symbol}; "
                    f"this strategy needs one: generate it with make_synthetic or import it",
                    field="datasets",
                )
    return datasets


def datasets_validate(strategy_key: str, dataset_ids: Any) -> list[Dataset]:
    """The datasets a job of ``strategy_key`` may run on (ids that exist, of the strategy's data
    kind and timeframes, with its companion series), or a 400 naming the first wrong one."""
    try:
        strategy = get_strategy(strategy_key)
    except ParameterError as exc:
        raise ApplicationError(exc.message, field="strategy") from None
    return strategy_datasets_validate(dataset_ids, strategy)


def grid_validate(strategy_key: str, grid: Any, *, n_datasets: int = 1) -> dict[str, list]:
    """Check a grid against the strategy's parameter space and the combination cap.

    The cap counts runs (combinations × datasets) and is checked from the value counts, before
    anything is expanded, so an absurd grid is refused at once.
    """
    try:
        strategy = get_strategy(strategy_key)
    except ParameterError as exc:
        raise ApplicationError(exc.message, field="strategy") from None
    if not isinstance(grid, Mapping) or not grid:
        names = ", ".join(strategy.parameter_space().names)
        raise ApplicationError(
            f"parameter_grid must name at least one parameter with its values; known: {names}",
            field="parameter_grid",
        )
    cap = setting("MAX_COMBINATIONS")
    try:
        validated = strategy.parameter_space().validate_grid(
            grid, max_combinations=max(1, cap // max(1, n_datasets))
        )
    except ParameterError as exc:
        field = exc.field if exc.field == "parameter_grid" else f"parameter_grid.{exc.field}"
        message = str(exc)
        if n_datasets > 1 and exc.field == "parameter_grid":
            message += f" (the cap of {cap} runs is shared by {n_datasets} datasets)"
        raise ApplicationError(message, field=field) from None
    return validated


def date_validate(field: str, value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ApplicationError(
                f"{field} must be an ISO-8601 date or datetime like 2023-06-01, got {value!r}",
                field=field,
            ) from None
    else:
        raise ApplicationError(f"{field} must be an ISO-8601 date string", field=field)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def int_option(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApplicationError(
            f"{field} must be an integer between {low} and {high}, got {value!r}", field=field
        )
    return value


def name_option(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApplicationError(f"name must be a string, got {value!r}", field="name")
    return value


def description_validate(value: Any) -> str:
    if not isinstance(value, str):
        raise ApplicationError("description must be text", field="description")
    if len(value) > DESCRIPTION_MAX_LENGTH:
        raise ApplicationError(
            f"description is {len(value):,} characters long; at most "
            f"{DESCRIPTION_MAX_LENGTH:,} are allowed: shorten it (put long notes elsewhere "
            "and link them)",
            field="description",
        )
    return value
