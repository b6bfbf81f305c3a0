"""The heatmap of a job: a metric over two parameters, the others aggregated or fixed, on one
slice of the job; aggregated in SQL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    FloatField,
    Max,
    Min,
    Q,
)

from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.optimization.selectors.jobs import job_allowed, job_groups
from apps.optimization.selectors.neighbourhood import dataset_neighbourhood
from apps.optimization.selectors.slices import (
    Slice,
    default_slice,
    format_value,
    grid_strides,
    job_slices,
    parse_value,
    position_sql,
)
from backtestlab.engine.metrics import METRIC_NAMES, METRICS
from backtestlab.errors import ApplicationError
from backtestlab.inputs import whole_number

HEATMAP_AGGS = ("max", "min", "mean", "median")
# metric: each run's own value; neighbourhood: each ranked run's neighbourhood worst of the
# job's objective (apps.optimization.selectors.neighbourhood), where plateaus stand out.
HEATMAP_VIEWS = ("metric", "neighbourhood")


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
    view: str = "metric"

    def query(self, job: OptimizationJob) -> dict[str, str]:
        """The query string that reproduces this heatmap (bookmarkable)."""
        grid = job.grid
        q = {"x": self.x, "y": self.y, "metric": self.metric, "agg": self.agg}
        if self.view != "metric":
            q["view"] = self.view
        q["dataset"] = str(self.slice.dataset.id)
        if self.slice.group:
            q["group"] = self.slice.group_label
        for name, pos in self.fixed.items():
            q[f"fixed.{name}"] = format_value(grid[name][pos])
        return q


HEATMAP_QUERY_KEYS = (
    "x", "y", "metric", "agg", "view", "dataset", "group", "fixed.<parameter>",
)  # fmt: skip


def heatmap_options(job: OptimizationJob, query: Mapping[str, str]) -> HeatmapOptions:
    """Parse and check heatmap choices (a query string); defaults for what is left out.

    Defaults: the first two parameters with several values that are not group_by parameters
    (y first, so smc_zones gives the seed's rr_target rows × sl_buffer_pct columns), the job's
    objective, ``max`` (``min`` for a lower-is-better metric), the slice of the best run.
    """
    grid = job.grid
    names = list(grid)
    for key in query:
        if key in ("x", "y", "metric", "agg", "view", "dataset", "group", "format"):
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
    view = query.get("view") or "metric"
    if view not in HEATMAP_VIEWS:
        raise ApplicationError(
            f"view must be one of {', '.join(HEATMAP_VIEWS)}; got {view!r}", field="view"
        )
    metric = query.get("metric") or job.objective
    if metric not in METRICS:
        raise ApplicationError(
            f"metric must be one of {', '.join(METRIC_NAMES)}; got {metric!r}", field="metric"
        )
    if view == "neighbourhood" and metric != job.objective:
        raise ApplicationError(
            f"the neighbourhood view scores the job's objective ({job.objective}); leave "
            f"metric out or send metric={job.objective}",
            field="metric",
        )
    agg = query.get("agg") or ("max" if METRICS[metric].higher_is_better else "min")
    if agg not in HEATMAP_AGGS:
        raise ApplicationError(
            f"agg must be one of {', '.join(HEATMAP_AGGS)}; got {agg!r}", field="agg"
        )
    slices = job_slices(job)
    chosen = default_slice(job, slices)
    raw_ds = query.get("dataset") or ""
    raw_group = query.get("group")
    if raw_ds or raw_group is not None:
        ds_ids = sorted({s.dataset.id for s in slices})
        ds_id = chosen.dataset.id
        if raw_ds:
            ds_id = whole_number(raw_ds)
            if ds_id not in ds_ids:
                raise ApplicationError(
                    f"dataset must be one of this job's datasets: "
                    f"{', '.join(map(str, ds_ids))}; got {raw_ds!r}",
                    field="dataset",
                )
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
            fixed[name] = parse_value(grid, name, raw, key)
    return HeatmapOptions(x=x, y=y, metric=metric, agg=agg, slice=chosen, fixed=fixed, view=view)


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
    # True where every combination behind the cell breaks a constraint: skipped, never run
    skipped: list[list[bool]] | None = None

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.options.metric].higher_is_better

    @property
    def metric_label(self) -> str:
        label = METRICS[self.options.metric].label
        if self.options.view == "neighbourhood":
            return f"Neighbourhood worst {label}"
        return label

    def as_dict(self) -> dict:
        o = self.options
        grid = self.job.grid
        return {
            "job": self.job.id,
            "status": self.job.status,
            "x": {"name": o.x, "values": self.x_values},
            "y": {"name": o.y, "values": self.y_values},
            "metric": o.metric,
            "metric_label": self.metric_label,
            "view": o.view,
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
            "skipped": self.skipped,
            "query": o.query(self.job),
        }


def _cells_numpy_median(
    runs, nx: int, ny: int, metric: str, min_trades: int
) -> dict[tuple[int, int], dict]:
    rows = np.array(
        [
            (xi, yi, np.nan if v is None else v, -1 if t is None else t)
            for xi, yi, v, t in runs.values_list("xi", "yi", metric, "n_trades")
        ],
        dtype=np.float64,
    ).reshape(-1, 4)
    out: dict[tuple[int, int], dict] = {}
    if not len(rows):
        return out
    code = rows[:, 1].astype(np.int64) * nx + rows[:, 0].astype(np.int64)
    order = np.argsort(code, kind="stable")
    code, values, trades = code[order], rows[order, 2], rows[order, 3]
    bounds = np.flatnonzero(np.diff(code)) + 1
    parts = zip(
        np.split(code, bounds), np.split(values, bounds), np.split(trades, bounds), strict=True
    )
    for part_codes, part, part_trades in parts:
        ranked = (part_trades >= min_trades) & ~np.isnan(part)
        scored = part[~np.isnan(part)]
        scored_ranked = part[ranked]
        yi, xi = divmod(int(part_codes[0]), nx)
        out[(xi, yi)] = {
            "value": float(np.median(scored)) if len(scored) else None,
            "value_ranked": float(np.median(scored_ranked)) if len(scored_ranked) else None,
            "runs": len(part),
            "ranked": int(ranked.sum()),
        }
    return out


_NUMPY_AGGS = {"max": np.nanmax, "min": np.nanmin, "mean": np.nanmean, "median": np.nanmedian}


def _cells_neighbourhood(job, runs, o: HeatmapOptions) -> dict[tuple[int, int], dict]:
    """Cells of each ranked run's neighbourhood worst (NaN for the others: counted as runs,
    never as ranked), aggregated with ``o.agg``."""
    worst, _mean = dataset_neighbourhood(job, o.slice.dataset.id)
    parts: dict[tuple[int, int], list[float]] = {}
    for xi, yi, grid_index in runs.values_list("xi", "yi", "grid_index"):
        parts.setdefault((xi, yi), []).append(worst[grid_index])
    out = {}
    for cell, values in parts.items():
        a = np.asarray(values, dtype=np.float64)
        scored = a[~np.isnan(a)]
        value = float(_NUMPY_AGGS[o.agg](scored)) if len(scored) else None
        out[cell] = {"value": value, "value_ranked": value, "runs": len(a), "ranked": len(scored)}
    return out


def _skipped_cells(
    job: OptimizationJob, o: HeatmapOptions, fixed: dict[str, int]
) -> list[list[bool]] | None:
    """Per cell (rows y, columns x): whether every combination behind it (with the fixed
    positions) breaks one of the strategy's constraints; None when the job skipped none."""
    if not job.skipped_combinations:
        return None
    grid = job.grid
    names = list(grid)
    ran = job_allowed(job).reshape([len(grid[n]) for n in names])
    ran = ran[tuple(fixed.get(n, slice(None)) for n in names)]
    left = [n for n in names if n not in fixed]
    ran = ran.any(axis=tuple(i for i, n in enumerate(left) if n not in (o.x, o.y)))
    if left.index(o.x) < left.index(o.y):
        ran = ran.T  # rows are y values
    return (~ran).tolist()


def job_heatmap(*, job: OptimizationJob, options: HeatmapOptions) -> Heatmap:
    """Cells of ``options.metric`` over (y, x) on one slice, aggregated with one GROUP BY.

    Each cell holds the aggregate over the succeeded runs with those two values (and the
    fixed values and the slice's group), and ``runs``, how many runs are behind it (runs
    whose metric is undefined count as runs but not in the aggregate), and ``ranked``, how many
    of them may be ranked (:mod:`apps.optimization.ranking`: enough trades) and have a value:
    the aggregate is over those when there are any. The best cell is the highest (lowest for a
    lower-is-better metric) of the cells with ranked runs; ties go to the first in row-major
    order.
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
            runs = runs.alias(**{f"_c{i}": position_sql(strides[name], len(grid[name]))})
            runs = runs.filter(**{f"_c{i}": pos})
    runs = runs.annotate(
        xi=position_sql(strides[o.x], len(grid[o.x])),
        yi=position_sql(strides[o.y], len(grid[o.y])),
    ).order_by()
    nx, ny = len(grid[o.x]), len(grid[o.y])
    if o.view == "neighbourhood":
        found = _cells_neighbourhood(job, runs, o)
    elif o.agg == "median" and connection.vendor != "postgresql":
        found = _cells_numpy_median(runs, nx, ny, o.metric, job.min_trades)
    else:
        agg = {"max": Max, "min": Min, "mean": Avg, "median": Median}[o.agg]
        ranked = Q(n_trades__gte=job.min_trades) & Q(**{f"{o.metric}__isnull": False})
        found = {
            (r["xi"], r["yi"]): r
            for r in runs.values("xi", "yi").annotate(
                value=agg(o.metric),
                value_ranked=agg(o.metric, filter=ranked),
                runs=Count("id"),
                ranked=Count("id", filter=ranked),
            )
        }
    cells: list[list[dict | None]] = [[None] * nx for _ in range(ny)]
    total = 0
    for (xi, yi), cell in found.items():
        # A cell with ranked runs shows their aggregate (and may be starred); one without
        # shows all its runs' aggregate, greyed: none of them may be called best.
        value = cell["value_ranked"] if cell["ranked"] else cell["value"]
        if value is not None:
            value = float(value)  # +inf (an unbounded ratio) stays: it is the best value
            if math.isnan(value):
                value = None
        cells[int(yi)][int(xi)] = {"value": value, "runs": cell["runs"], "ranked": cell["ranked"]}
        total += cell["runs"]
    higher = METRICS[o.metric].higher_is_better
    best = None
    values = []
    for yi in range(ny):
        for xi in range(nx):
            cell = cells[yi][xi]
            if cell is None or cell["value"] is None or not cell["ranked"]:
                continue  # greyed cells are outside the colour scale too
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
        skipped=_skipped_cells(job, o, constraints),
        x_values=list(grid[o.x]),
        y_values=list(grid[o.y]),
        cells=cells,
        best=best,
        low=min(values) if values else None,
        high=max(values) if values else None,
        total_runs=total,
    )
