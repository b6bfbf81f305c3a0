"""Parameter sensitivity: how much the objective drops next to the best run in the grid.

The sweep's objective values are laid on the grid (mixed radix, last parameter fastest, as
:mod:`~backtestlab.engine.sweep` numbers them).  The neighbourhood of the best cell is the
cells one step away along each *numeric* axis with more than one value (choices and booleans
are not ordered, so they have no neighbours).  The drop is

    ``(best - mean(neighbours)) / |best|``

(0 = a plateau, 1 = the neighbours score 0, > 1 = they are worse than 0), see
:func:`relative_fall`.  A sharp peak (large drop) is the heatmap sign of an overfitted
parameter set.  Failed or NaN neighbours count as the worst value of the grid.  An unbounded
best (``+inf``, e.g. a profit factor with no losing trade) has drop 0 when its neighbours are
unbounded too and 1 (all of it) when they are finite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sensitivity:
    best_index: int
    best_value: float
    neighbour_indexes: tuple[int, ...]
    neighbour_mean: float
    drop: float  # NaN when there are no neighbours

    def as_dict(self) -> dict:
        return {
            "best_index": self.best_index,
            "best_value": self.best_value,
            "neighbour_indexes": list(self.neighbour_indexes),
            "neighbour_mean": self.neighbour_mean,
            "drop": self.drop,
        }


def relative_fall(centre: float, other: float) -> float:
    """How far ``other`` lies below ``centre``, as a fraction of ``|centre|`` (negative when it
    lies above).  Limits where a value is unbounded: an infinite centre falls 0 to itself and
    ``sign(centre)`` to any finite value; an infinite ``other`` lies infinitely above or below
    a finite centre.  A centre of 0 falls 0 to 0 and infinitely to anything else."""
    if math.isnan(centre) or math.isnan(other):
        return math.nan
    if math.isinf(centre):
        return 0.0 if other == centre else math.copysign(1.0, centre)
    if centre == 0.0:
        return 0.0 if other == 0.0 else math.copysign(math.inf, -other)
    return (centre - other) / abs(centre)


def neighbour_indexes(grid: Mapping[str, Sequence], index: int) -> list[int]:
    """Grid indexes one step from ``index`` along each numeric axis with several values
    (choices and booleans are not ordered, so they have no neighbours)."""
    shape = tuple(len(x) for x in grid.values())
    coords = np.unravel_index(index, shape)
    neigh = []
    for axis, axis_values in enumerate(grid.values()):
        if len(axis_values) < 2 or not _numeric(axis_values):
            continue
        for step in (-1, 1):
            c = list(coords)
            c[axis] += step
            if 0 <= c[axis] < shape[axis]:
                neigh.append(int(np.ravel_multi_index(tuple(c), shape)))
    return neigh


def _numeric(values: Sequence) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def neighbourhood_drop(
    grid: Mapping[str, Sequence],
    values: np.ndarray,
    *,
    higher_is_better: bool = True,
    best_index: int | None = None,
) -> Sensitivity:
    """``values[k]`` = objective of grid combination ``k`` (NaN = failed / undefined)."""
    v = np.asarray(values, dtype=np.float64)
    shape = tuple(len(x) for x in grid.values())
    if v.size != math.prod(shape):
        raise ValueError(f"values has {v.size} entries, the grid {math.prod(shape)}")
    finite = ~np.isnan(v)  # +inf is a value (an unbounded ratio)
    if not finite.any():
        raise ValueError("no objective value in the sweep")
    signed = v if higher_is_better else -v
    if best_index is None:
        best_index = int(np.argmax(np.where(finite, signed, -np.inf)))
    best = float(signed[best_index])
    worst = float(signed[finite].min())
    neigh = neighbour_indexes(grid, best_index)
    if not neigh:
        return Sensitivity(best_index, float(v[best_index]), (), math.nan, math.nan)
    nv = np.where(finite[neigh], signed[neigh], worst)
    mean = float(nv.mean())
    drop = relative_fall(best, mean)
    return Sensitivity(
        best_index,
        float(v[best_index]),
        tuple(neigh),
        mean if higher_is_better else -mean,
        float(drop),
    )


def neighbourhood_scores(
    grid: Mapping[str, Sequence],
    values: np.ndarray,
    *,
    higher_is_better: bool = True,
    exists: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every combination's neighbourhood: ``(worst, mean)`` of the objective over the
    combination and its immediate neighbours (one step along each numeric axis, as in
    :func:`neighbourhood_drop`), one value per grid index.

    ``values[k]`` is NaN where combination ``k`` may not be ranked (failed, too few trades,
    undefined): such a neighbour counts as the worst ranked value of the grid (a cliff next
    door is what "robust" guards against), and such a combination has NaN scores.  "Worst"
    is the lowest value for a higher-is-better objective and the highest otherwise.  The
    robust best is the combination with the best worst (ties: the best mean).

    ``exists`` (bool per grid index, default all) marks the combinations that were run: one
    skipped by a strategy constraint is no neighbour at all (it was never a choice, so it is
    not a cliff) and has NaN scores."""
    v = np.asarray(values, dtype=np.float64)
    shape = tuple(len(x) for x in grid.values())
    if v.size != math.prod(shape):
        raise ValueError(f"values has {v.size} entries, the grid {math.prod(shape)}")
    signed = (v if higher_is_better else -v).reshape(shape)
    ran = np.ones(shape, dtype=bool) if exists is None else np.asarray(exists, bool).reshape(shape)
    signed = np.where(ran, signed, np.nan)
    defined = ~np.isnan(signed)
    worst_value = signed[defined].min() if defined.any() else np.nan
    filled = np.where(defined, signed, worst_value)
    lowest = signed.copy()  # NaN centre -> NaN scores
    total = signed.copy()
    count = np.ones(shape)
    for axis, axis_values in enumerate(grid.values()):
        if len(axis_values) < 2 or not _numeric(axis_values):
            continue
        for here, there in (
            (slice(1, None), slice(None, -1)),  # the neighbour one step down
            (slice(None, -1), slice(1, None)),  # one step up
        ):
            at = [slice(None)] * len(shape)
            src = [slice(None)] * len(shape)
            at[axis], src[axis] = here, there
            at, src = tuple(at), tuple(src)
            there_ran = ran[src]
            # a NaN centre stays NaN; a skipped neighbour changes nothing
            lowest[at] = np.where(there_ran, np.minimum(lowest[at], filled[src]), lowest[at])
            total[at] = total[at] + np.where(there_ran, filled[src], 0.0)
            count[at] += there_ran
    with np.errstate(invalid="ignore"):
        mean = total / count
    sign = 1.0 if higher_is_better else -1.0
    return (sign * lowest).ravel(), (sign * mean).ravel()
