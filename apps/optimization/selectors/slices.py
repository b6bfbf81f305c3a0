"""Grid-index arithmetic and a job's slices (dataset × group).

A run's parameters are the mixed-radix decode of its ``grid_index`` in ``job.grid`` order, last
parameter fastest (:func:`backtestlab.engine.sweep.params_at`). So the position of parameter
``p`` in its value list is ``(grid_index / stride_p) % len_p``: integer arithmetic on an integer
column, so GROUP BY and WHERE on parameters need no JSON at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    ExpressionWrapper,
    F,
    IntegerField,
    Value,
)

from apps.market.models import Dataset
from apps.optimization.models import OptimizationJob
from apps.optimization.selectors.jobs import job_best_runs, job_groups
from backtestlab.errors import ApplicationError


def grid_strides(grid: Mapping[str, Sequence]) -> dict[str, int]:
    """Stride of each parameter in the mixed-radix grid index (last parameter fastest)."""
    strides: dict[str, int] = {}
    stride = 1
    for name in reversed(list(grid)):
        strides[name] = stride
        stride *= len(grid[name])
    return {name: strides[name] for name in grid}


def position_sql(stride: int, count: int):
    """SQL for ``(grid_index / stride) % count`` on integers.

    Written as ``g / s - g / (s * n) * n`` because SQLite's MOD() returns a float and
    PostgreSQL's ``%`` needs integers; integer division is integer on both.
    """
    g = F("grid_index")
    expr = (g / Value(stride) if stride > 1 else g) - g / Value(stride * count) * Value(count)
    return ExpressionWrapper(expr, output_field=IntegerField())


def grid_positions(grid: Mapping[str, Sequence], grid_index: int) -> dict[str, int]:
    strides = grid_strides(grid)
    return {n: (grid_index // strides[n]) % len(v) for n, v in grid.items()}


def format_value(value: Any) -> str:
    """A parameter value as the pages and query strings write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_value(grid: Mapping[str, Sequence], name: str, raw: str, field_name: str) -> int:
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


def default_slice(job: OptimizationJob, slices: list[Slice]) -> Slice:
    """The slice holding the job's best run (where the operator will look first)."""
    best = job.best_run or next(iter(job_best_runs(job=job, limit=1)), None)
    if best is not None:
        for s in slices:
            if s.dataset.id == best.dataset_id and all(
                best.params.get(k) == v for k, v in s.group.items()
            ):
                return s
    return slices[0]
