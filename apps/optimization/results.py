"""What an operator reads about a job's results: one function per question, every surface
(lab pages, REST API, admin, bench) calls the same one.

- :func:`job_heatmap`: a metric over two parameters, the others aggregated or fixed, on one
  slice (dataset × group) of the job; aggregated in SQL.
- :func:`job_sensitivity`: 1-D slices through the best run, one per parameter.
- :func:`job_best_table`: top runs per slice beside the current production parameters.
- :func:`run_backtest_detail`: equity, drawdown and trades of a run, recomputed by the engine.
- :func:`jobs_compare`: 2–4 jobs side by side.
- :func:`job_export_columns` / :func:`job_export_rows`: every run, streamed from a cursor.

Grid-index arithmetic: a run's parameters are the mixed-radix decode of its ``grid_index`` in
``job.grid`` order, last parameter fastest (:func:`backtestlab.engine.sweep.params_at`). So the
position of parameter ``p`` in its value list is ``(grid_index / stride_p) % len_p``, integer
arithmetic on an integer column: GROUP BY and WHERE on parameters need no JSON at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    Value,
)
from django.http import Http404

from apps.market.models import Dataset
from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.optimization.selectors import job_best_runs, job_groups, jobs_visible_to
from apps.strategies.models import StrategyConfig
from apps.strategies.selectors import strategy_config_current
from backtestlab.engine.metrics import METRIC_NAMES, METRICS, compute
from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.errors import ApplicationError

HEATMAP_AGGS = ("max", "min", "mean", "median")
MAX_CURVE_POINTS = 2000
COMPARE_MIN, COMPARE_MAX = 2, 4
EXPORT_CHUNK = 2000


# --- grid arithmetic -----------------------------------------------------------------------------


def grid_strides(grid: Mapping[str, Sequence]) -> dict[str, int]:
    """Stride of each parameter in the mixed-radix grid index (last parameter fastest)."""
    strides: dict[str, int] = {}
    stride = 1
    for name in reversed(list(grid)):
        strides[name] = stride
        stride *= len(grid[name])
    return {name: strides[name] for name in grid}


def _position_sql(stride: int, count: int):
    """SQL for ``(grid_index / stride) % count`` on integers.

    Written as ``g / s - g / (s * n) * n`` because SQLite's MOD() returns a float and
    PostgreSQL's ``%`` needs integers; integer division is integer on both.
    """
    g = F("grid_index")
    expr = (g / Value(stride) if stride > 1 else g) - g / Value(stride * count) * Value(count)
    return ExpressionWrapper(expr, output_field=IntegerField())


def _positions(grid: Mapping[str, Sequence], grid_index: int) -> dict[str, int]:
    strides = grid_strides(grid)
    return {n: (grid_index // strides[n]) % len(v) for n, v in grid.items()}


def format_value(value: Any) -> str:
    """A parameter value as the pages and query strings write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _parse_value(grid: Mapping[str, Sequence], name: str, raw: str, field_name: str) -> int:
    """Position in ``grid[name]`` of the value ``raw`` names, or a 400 listing the values."""
    values = grid[name]
    text = raw.strip()
    for i, v in enumerate(values):
        if format_value(v) == text or str(v) == text:
            return i
        if isinstance(v, bool):
            if text.lower() in (("true", "1", "yes") if v else ("false", "0", "no")):
                return i
        elif isinstance(v, int | float):
            try:
                if float(text) == float(v):
                    return i
            except ValueError:
                pass
    raise ApplicationError(
        f"{field_name}: {raw!r} is not a value of {name} in this job; "
        f"use one of {', '.join(format_value(v) for v in values)}",
        field=field_name,
    )


# --- slices ------------------------------------------------------------------------------------


def group_label(group: Mapping[str, Any]) -> str:
    return "/".join(format_value(v) for v in group.values())


@dataclass(frozen=True)
class Slice:
    """One (dataset, group) part of a job: best tables and heatmaps are per slice."""

    dataset: Dataset
    group: dict = field(default_factory=dict)

    @property
    def group_label(self) -> str:
        return group_label(self.group)

    @property
    def label(self) -> str:
        base = f"{self.dataset.symbol} {self.dataset.timeframe} ({self.dataset.name})"
        return f"{base} · {self.group_label}" if self.group else base

    def as_dict(self) -> dict:
        return {
            "dataset": self.dataset.id,
            "dataset_name": self.dataset.name,
            "symbol": self.dataset.symbol,
            "timeframe": self.dataset.timeframe,
            "group": self.group_label,
            "group_params": dict(self.group),
        }


def job_slices(job: OptimizationJob) -> list[Slice]:
    """Every (dataset, group_by value) combination of the job, datasets by id."""
    groups = job_groups(job)
    return [Slice(ds, g) for ds in job.datasets.order_by("id") for g in groups]


def _default_slice(job: OptimizationJob, slices: list[Slice]) -> Slice:
    """The slice holding the job's best run (where the operator will look first)."""
    best = job.best_run or next(iter(job_best_runs(job=job, limit=1)), None)
    if best is not None:
        for s in slices:
            if s.dataset.id == best.dataset_id and all(
                best.params.get(k) == v for k, v in s.group.items()
            ):
                return s
    return slices[0]


# --- heatmap -----------------------------------------------------------------------------------


class Median(Aggregate):
    """PostgreSQL's exact median (other databases: numpy on the fetched values)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


@dataclass
class HeatmapOptions:
    x: str
    y: str
    metric: str
    agg: str
    slice: Slice
    fixed: dict[str, int] = field(default_factory=dict)  # parameter -> position in its values

    def query(self, job: OptimizationJob) -> dict[str, str]:
        """The query string that reproduces this heatmap (bookmarkable)."""
        grid = job.grid
        q = {"x": self.x, "y": self.y, "metric": self.metric, "agg": self.agg}
        q["dataset"] = str(self.slice.dataset.id)
        if self.slice.group:
            q["group"] = self.slice.group_label
        for name, pos in self.fixed.items():
            q[f"fixed.{name}"] = format_value(grid[name][pos])
        return q


HEATMAP_QUERY_KEYS = ("x", "y", "metric", "agg", "dataset", "group", "fixed.<parameter>")


def heatmap_options(job: OptimizationJob, query: Mapping[str, str]) -> HeatmapOptions:
    """Parse and check heatmap choices (a query string); defaults for what is left out.

    Defaults: the first two parameters with several values that are not group_by parameters
    (y first, so smc_zones gives the seed's rr_target rows × sl_buffer_pct columns), the job's
    objective, ``max`` (``min`` for a lower-is-better metric), the slice of the best run.
    """
    grid = job.grid
    names = list(grid)
    for key in query:
        if key in ("x", "y", "metric", "agg", "dataset", "group", "format"):
            continue
        if key.startswith("fixed.") and key[6:] in grid:
            continue
        if key.startswith("fixed."):
            raise ApplicationError(
                f"{key}: {key[6:]!r} is not a parameter of this job; "
                f"use fixed.<one of {', '.join(names)}>",
                field=key,
            )
        raise ApplicationError(
            f"unknown query parameter {key!r}; allowed: {', '.join(HEATMAP_QUERY_KEYS)}",
            field=key,
        )
    group_by = set(job_groups(job)[0])
    varying = [n for n in names if len(grid[n]) > 1 and n not in group_by]
    preferred = varying + [n for n in names if n not in varying]

    def axis(key: str, exclude: str | None) -> str:
        raw = query.get(key) or ""
        if raw:
            if raw not in grid:
                raise ApplicationError(
                    f"{key} must be a parameter of this job, one of {', '.join(names)}; "
                    f"got {raw!r}",
                    field=key,
                )
            return raw
        return next(n for n in preferred if n != exclude)

    y = axis("y", query.get("x") or None)
    x = axis("x", y)
    if x == y:
        raise ApplicationError(
            f"x and y must be two different parameters (both are {x!r})", field="x"
        )
    metric = query.get("metric") or job.objective
    if metric not in METRICS:
        raise ApplicationError(
            f"metric must be one of {', '.join(METRIC_NAMES)}; got {metric!r}", field="metric"
        )
    agg = query.get("agg") or ("max" if METRICS[metric].higher_is_better else "min")
    if agg not in HEATMAP_AGGS:
        raise ApplicationError(
            f"agg must be one of {', '.join(HEATMAP_AGGS)}; got {agg!r}", field="agg"
        )
    slices = job_slices(job)
    chosen = _default_slice(job, slices)
    raw_ds = query.get("dataset") or ""
    raw_group = query.get("group")
    if raw_ds or raw_group is not None:
        ds_ids = sorted({s.dataset.id for s in slices})
        ds_id = chosen.dataset.id
        if raw_ds:
            if not raw_ds.isdigit() or int(raw_ds) not in ds_ids:
                raise ApplicationError(
                    f"dataset must be one of this job's datasets: "
                    f"{', '.join(map(str, ds_ids))}; got {raw_ds!r}",
                    field="dataset",
                )
            ds_id = int(raw_ds)
        label = chosen.group_label if raw_group is None else raw_group
        matches = [s for s in slices if s.dataset.id == ds_id and s.group_label == label]
        if not matches:
            labels = sorted({s.group_label for s in slices})
            raise ApplicationError(
                f"group must be one of {', '.join(labels) or '(none: this job has no groups)'}"
                f"; got {raw_group!r}",
                field="group",
            )
        chosen = matches[0]
    fixed: dict[str, int] = {}
    for key, raw in query.items():
        if key.startswith("fixed.") and raw not in ("", None):
            name = key[6:]
            if name in (x, y):
                raise ApplicationError(
                    f"{key}: {name} is an axis of the heatmap; it cannot also be fixed",
                    field=key,
                )
            fixed[name] = _parse_value(grid, name, raw, key)
    return HeatmapOptions(x=x, y=y, metric=metric, agg=agg, slice=chosen, fixed=fixed)


@dataclass
class Heatmap:
    job: OptimizationJob
    options: HeatmapOptions
    x_values: list
    y_values: list
    cells: list[list[dict | None]]  # rows = y values, columns = x values
    best: dict | None
    low: float | None
    high: float | None
    total_runs: int

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.options.metric].higher_is_better

    def as_dict(self) -> dict:
        o = self.options
        grid = self.job.grid
        return {
            "job": self.job.id,
            "status": self.job.status,
            "x": {"name": o.x, "values": self.x_values},
            "y": {"name": o.y, "values": self.y_values},
            "metric": o.metric,
            "metric_label": METRICS[o.metric].label,
            "higher_is_better": self.higher_is_better,
            "agg": o.agg,
            "slice": o.slice.as_dict(),
            "fixed": {n: grid[n][p] for n, p in o.fixed.items()},
            "aggregated": [n for n in grid if n not in (o.x, o.y, *o.fixed, *o.slice.group)],
            "cells": self.cells,
            "best": self.best,
            "min": self.low,
            "max": self.high,
            "runs": self.total_runs,
            "query": o.query(self.job),
        }


def _cells_numpy_median(runs, nx: int, ny: int, metric: str) -> dict[tuple[int, int], dict]:
    rows = np.array(
        [
            (xi, yi, np.nan if v is None else v)
            for xi, yi, v in runs.values_list("xi", "yi", metric)
        ],
        dtype=np.float64,
    ).reshape(-1, 3)
    out: dict[tuple[int, int], dict] = {}
    if not len(rows):
        return out
    code = rows[:, 1].astype(np.int64) * nx + rows[:, 0].astype(np.int64)
    order = np.argsort(code, kind="stable")
    code, values = code[order], rows[order, 2]
    bounds = np.flatnonzero(np.diff(code)) + 1
    for part_codes, part in zip(np.split(code, bounds), np.split(values, bounds), strict=True):
        scored = part[~np.isnan(part)]
        value = float(np.median(scored)) if len(scored) else None
        yi, xi = divmod(int(part_codes[0]), nx)
        out[(xi, yi)] = {"value": value, "runs": len(part)}
    return out


def job_heatmap(*, job: OptimizationJob, options: HeatmapOptions) -> Heatmap:
    """Cells of ``options.metric`` over (y, x) on one slice, aggregated with one GROUP BY.

    Each cell holds the aggregate over the succeeded runs with those two values (and the
    fixed values and the slice's group), and ``runs``, how many runs are behind it (runs
    whose metric is undefined count as runs but not in the aggregate). The best cell is the
    highest (lowest for a lower-is-better metric); ties go to the first in row-major order.
    """
    grid = job.grid
    strides = grid_strides(grid)
    o = options
    runs = OptimizationRun.objects.filter(
        job=job, dataset_id=o.slice.dataset.id, status=OptimizationRun.Status.SUCCEEDED
    )
    constraints = dict(o.fixed)
    for name, value in o.slice.group.items():
        if name not in (o.x, o.y) and name not in constraints:
            constraints[name] = grid[name].index(value)
    for i, (name, pos) in enumerate(constraints.items()):
        if len(grid[name]) > 1:
            runs = runs.alias(**{f"_c{i}": _position_sql(strides[name], len(grid[name]))})
            runs = runs.filter(**{f"_c{i}": pos})
    runs = runs.annotate(
        xi=_position_sql(strides[o.x], len(grid[o.x])),
        yi=_position_sql(strides[o.y], len(grid[o.y])),
    ).order_by()
    nx, ny = len(grid[o.x]), len(grid[o.y])
    if o.agg == "median" and connection.vendor != "postgresql":
        found = _cells_numpy_median(runs, nx, ny, o.metric)
    else:
        agg = {"max": Max, "min": Min, "mean": Avg, "median": Median}[o.agg]
        found = {
            (r["xi"], r["yi"]): {"value": r["value"], "runs": r["runs"]}
            for r in runs.values("xi", "yi").annotate(value=agg(o.metric), runs=Count("id"))
        }
    cells: list[list[dict | None]] = [[None] * nx for _ in range(ny)]
    total = 0
    for (xi, yi), cell in found.items():
        value = cell["value"]
        if value is not None:
            value = float(value)
            if not math.isfinite(value):
                value = None
        cells[int(yi)][int(xi)] = {"value": value, "runs": cell["runs"]}
        total += cell["runs"]
    higher = METRICS[o.metric].higher_is_better
    best = None
    values = []
    for yi in range(ny):
        for xi in range(nx):
            cell = cells[yi][xi]
            if cell is None or cell["value"] is None:
                continue
            values.append(cell["value"])
            if (
                best is None
                or (higher and cell["value"] > best["value"])
                or (not higher and cell["value"] < best["value"])
            ):
                best = {
                    "xi": xi,
                    "yi": yi,
                    "x": grid[o.x][xi],
                    "y": grid[o.y][yi],
                    "value": cell["value"],
                    "runs": cell["runs"],
                }
    return Heatmap(
        job=job,
        options=o,
        x_values=list(grid[o.x]),
        y_values=list(grid[o.y]),
        cells=cells,
        best=best,
        low=min(values) if values else None,
        high=max(values) if values else None,
        total_runs=total,
    )


# --- sensitivity -------------------------------------------------------------------------------


def job_sensitivity(
    *, job: OptimizationJob, metric: str | None = None, run: OptimizationRun | None = None
) -> dict:
    """For the best run (or ``run``), one 1-D slice per parameter with several values: the
    metric as that parameter moves through its values while every other parameter (and the
    dataset) stays at the run's. ``neighbour_drop_pct`` is the largest fall from the run's
    value to an adjacent value, in % of |value|: small means a plateau, large a spike."""
    metric = metric or job.objective
    if metric not in METRICS:
        raise ApplicationError(
            f"metric must be one of {', '.join(METRIC_NAMES)}; got {metric!r}", field="metric"
        )
    if run is None:
        run = next(iter(job_best_runs(job=job, limit=1)), None)
    result = {"job": job.id, "metric": metric, "metric_label": METRICS[metric].label}
    if run is None:
        return {**result, "run": None, "parameters": []}
    grid = job.grid
    strides = grid_strides(grid)
    positions = _positions(grid, run.grid_index)
    wanted: dict[str, list[int]] = {}
    for name, values in grid.items():
        if len(values) > 1:
            base = run.grid_index - positions[name] * strides[name]
            wanted[name] = [base + k * strides[name] for k in range(len(values))]
    indexes = {i for idx in wanted.values() for i in idx}
    found = {
        gi: (run_id, status, value)
        for gi, run_id, status, value in OptimizationRun.objects.filter(
            job=job, dataset_id=run.dataset_id, grid_index__in=indexes
        ).values_list("grid_index", "id", "status", metric)
    }
    higher = METRICS[metric].higher_is_better
    parameters = []
    for name, idx in wanted.items():
        points = []
        for k, gi in enumerate(idx):
            run_id, status, value = found.get(gi, (None, None, None))
            if status != OptimizationRun.Status.SUCCEEDED:
                value = None
            points.append(
                {
                    "value": grid[name][k],
                    "metric": value,
                    "run_id": run_id,
                    "is_run": k == positions[name],
                }
            )
        centre = points[positions[name]]["metric"]
        drops = []
        for k in (positions[name] - 1, positions[name] + 1):
            if 0 <= k < len(points) and centre not in (None, 0) and points[k]["metric"] is not None:
                diff = centre - points[k]["metric"] if higher else points[k]["metric"] - centre
                drops.append(100.0 * diff / abs(centre))
        parameters.append(
            {
                "name": name,
                "points": points,
                "neighbour_drop_pct": max(drops) if drops else None,
            }
        )
    return {
        **result,
        "run": {
            "id": run.id,
            "dataset": run.dataset_id,
            "params": run.params,
            "value": getattr(run, metric),
        },
        "parameters": parameters,
    }


# --- production parameters beside the best table ----------------------------------------------

_production_cache: dict[tuple, dict] = {}
_PRODUCTION_CACHE_SIZE = 256


def _prepared_context(job: OptimizationJob, dataset: Dataset, strategy):
    # The workers' per-process context cache (same dataset and date range as the job's runs).
    from apps.optimization.services import _context

    return _context(job, dataset, strategy)


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
        result = strategy.run(_prepared_context(job, dataset, strategy), params, Costs(**job.costs))
        metrics = {
            n: (float(v) if math.isfinite(v) else None)
            for n, v in compute(result).as_dict().items()
        }
        entry = {"params": params, "metrics": metrics, "error": ""}
    except ParameterError as exc:
        entry = {"params": config.params, "metrics": {}, "error": f"invalid parameters: {exc}"}
    while len(_production_cache) >= _PRODUCTION_CACHE_SIZE:
        _production_cache.pop(next(iter(_production_cache)))
    _production_cache[key] = entry
    return entry


def improvement_pct(value: float | None, baseline: float | None, metric: str) -> float | None:
    """How much better ``value`` is than ``baseline`` in % of |baseline| (negative: worse)."""
    if value is None or baseline is None or baseline == 0:
        return None
    diff = value - baseline if METRICS[metric].higher_is_better else baseline - value
    return 100.0 * diff / abs(baseline)


def job_best_table(*, job: OptimizationJob, limit: int = 10) -> list[dict]:
    """The best-parameter table: per slice (symbol/timeframe dataset × group), the top
    ``limit`` succeeded runs by the objective (ties: lowest run id), the current production
    parameters of that (strategy, symbol, timeframe, pattern) with their objective on the same
    data, and each run's improvement over them in %."""
    table = []
    objective = job.objective
    for s in job_slices(job):
        runs = job_best_runs(job=job, limit=limit, dataset_id=s.dataset.id, params=s.group)
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
                "rows": [
                    {
                        "run": r,
                        "value": getattr(r, objective),
                        "improvement_pct": improvement_pct(
                            getattr(r, objective), baseline, objective
                        ),
                    }
                    for r in runs
                ],
            }
        )
    return table


# --- run detail --------------------------------------------------------------------------------


def downsample_indices(equity: np.ndarray, drawdown: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` indices keeping, per bucket, the equity peak and the deepest
    drawdown, plus the first and last bar: the curve's shape and its max drawdown survive."""
    n = len(equity)
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, (max_points - 2) // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    picks = [0, n - 1]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b > a:
            picks.append(a + int(np.argmax(equity[a:b])))
            picks.append(a + int(np.argmin(drawdown[a:b])))
    return np.unique(np.array(picks, dtype=np.int64))


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def run_backtest_detail(run: OptimizationRun, *, max_points: int = MAX_CURVE_POINTS) -> dict:
    """Equity curve, drawdown, trades and metrics of a run, recomputed on demand through
    ``strategy.run`` from (strategy, dataset, the job's date range and costs, params): runs
    are deterministic, so only their metrics are stored. Curves are downsampled to
    ``max_points``; trades are complete."""
    job = run.job
    dataset = run.dataset
    strategy = get_strategy(job.strategy)
    ctx = _prepared_context(job, dataset, strategy)
    result = strategy.run(ctx, run.params, Costs(**job.costs))
    equity = np.asarray(result.equity, dtype=np.float64)
    peak = np.maximum.accumulate(equity) if len(equity) else equity
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = np.where(peak > 0, (equity / peak - 1.0) * 100.0, 0.0)
    idx = downsample_indices(equity, drawdown, max_points)
    t = result.trades
    trades = [
        {
            "entry_time": int(t.entry_ts[i]),
            "exit_time": int(t.exit_ts[i]),
            "entry_price": float(t.entry_price[i]),
            "exit_price": float(t.exit_price[i]),
            "side": "long" if int(t.side[i]) > 0 else "short",
            "pnl_pct": float(t.pnl_pct[i]),
            "reason": str(t.reason[i]),
        }
        for i in range(len(t))
    ]
    metrics = {n: _finite(v) for n, v in compute(result).as_dict().items()}
    return {
        "run": run.id,
        "job": job.id,
        "strategy": job.strategy,
        "dataset": {
            "id": dataset.id,
            "name": dataset.name,
            "symbol": dataset.symbol,
            "timeframe": dataset.timeframe,
        },
        "date_from": job.date_from,
        "date_to": job.date_to,
        "costs": job.costs,
        "params": run.params,
        "metrics": metrics,
        "initial_equity": float(result.initial_equity),
        "bars": int(len(equity)),
        "curve": {
            "time": [int(v) for v in np.asarray(result.ts)[idx]],
            "equity": [float(v) for v in equity[idx]],
            "drawdown_pct": [float(v) for v in drawdown[idx]],
        },
        "trades": trades,
    }


# --- compare -----------------------------------------------------------------------------------


def compare_ids_parse(raw: Sequence[str] | str | None) -> list[int]:
    """``"1,2"`` or ``["1", "2"]`` -> ``[1, 2]``: 2–4 distinct job ids, or a 400."""
    parts = raw if isinstance(raw, list | tuple) else [raw or ""]
    ids: list[int] = []
    for part in parts:
        for token in str(part).split(","):
            token = token.strip()
            if not token:
                continue
            if not token.isdigit():
                raise ApplicationError(
                    f"ids must be job ids separated by commas, e.g. ids=3,7; got {token!r}",
                    field="ids",
                )
            if int(token) not in ids:
                ids.append(int(token))
    if not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        raise ApplicationError(
            f"compare takes {COMPARE_MIN} to {COMPARE_MAX} different jobs, got {len(ids)}; "
            "e.g. ids=3,7",
            field="ids",
        )
    return ids


def jobs_compare(*, user, ids: Sequence[int], max_points: int = MAX_CURVE_POINTS) -> list[dict]:
    """2–4 jobs side by side: their best run's parameters and metrics and its equity curve
    (in % return so different starting equities overlay). A job the user may not see: 404."""
    jobs = {j.id: j for j in jobs_visible_to(user).filter(id__in=ids)}
    missing = [i for i in ids if i not in jobs]
    if missing:
        raise Http404(f"no job {missing[0]} visible to you")
    out = []
    for job_id in ids:
        job = jobs[job_id]
        best = next(iter(job_best_runs(job=job, limit=1)), None)
        entry = {
            "job": job,
            "id": job.id,
            "name": job.name,
            "strategy": job.strategy,
            "status": job.status,
            "objective": job.objective,
            "objective_label": METRICS[job.objective].label,
            "best_run": best,
            "params": best.params if best else None,
            "metrics": {n: getattr(best, n) for n in METRIC_NAMES} if best else None,
            "curve": None,
        }
        if best is not None:
            detail = run_backtest_detail(best, max_points=max_points // 2)
            e0 = detail["initial_equity"]
            entry["dataset"] = detail["dataset"]
            entry["curve"] = {
                "time": detail["curve"]["time"],
                "return_pct": [(v / e0 - 1.0) * 100.0 for v in detail["curve"]["equity"]],
            }
        out.append(entry)
    return out


# --- export ------------------------------------------------------------------------------------


def job_export_columns(job: OptimizationJob) -> list[str]:
    return ["run_id", "dataset", *job.grid, "status", *METRIC_NAMES]


def job_export_rows(job: OptimizationJob) -> Iterator[dict]:
    """Every run of the job as a dict (params in ``job.grid`` order), read through a cursor
    in chunks of EXPORT_CHUNK rows (a server-side cursor on PostgreSQL): memory stays flat
    whatever the number of runs."""
    names = dict(job.datasets.values_list("id", "name"))
    param_names = list(job.grid)
    rows = (
        OptimizationRun.objects.filter(job=job)
        .order_by("dataset_id", "grid_index")
        .values_list("id", "dataset_id", "params", "status", *METRIC_NAMES)
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    for run_id, dataset_id, params, status, *metrics in rows:
        yield {
            "run_id": run_id,
            "dataset": names.get(dataset_id, dataset_id),
            "params": {n: params.get(n) for n in param_names},
            "status": status,
            "metrics": dict(zip(METRIC_NAMES, metrics, strict=True)),
        }


def job_export_csv_lines(job: OptimizationJob) -> Iterator[str]:
    """The CSV export, one line at a time (header first)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(job_export_columns(job))
    for row in job_export_rows(job):
        values = [row["run_id"], row["dataset"]]
        values += [format_value(v) if isinstance(v, bool) else v for v in row["params"].values()]
        values.append(row["status"])
        values += ["" if v is None else v for v in row["metrics"].values()]
        yield line(values)


def job_export_json_chunks(job: OptimizationJob) -> Iterator[str]:
    """The JSON export: one array of run objects, written piece by piece."""
    import json

    yield "["
    first = True
    for row in job_export_rows(job):
        obj = {
            "run_id": row["run_id"],
            "dataset": row["dataset"],
            "params": row["params"],
            "status": row["status"],
            **row["metrics"],
        }
        yield ("\n" if first else ",\n") + json.dumps(obj)
        first = False
    yield "\n]\n"
