"""Environment occupancy and selector frequency over the synthetic universe's decision steps.

Three read-only tools share one definition of the decision steps and of a grid axis:

* :func:`environment_heatmap` -- for two environment metrics, the share of decision steps the
  environment spends in each (x, y) bucket, ignoring any selector or strategy.
* :func:`selector_frequency_scan` -- sweep one selector threshold; the share of decision
  steps on which the selector (:mod:`.options_selector_rules`) allows a trade, other
  thresholds fixed.
* :func:`selector_heatmap` -- two thresholds on a grid; the share of steps allowed.

Decision steps
--------------
Decision step ``s`` is day ``s * decision_interval_days`` of the universe, for every such day
below ``horizon_days``: days ``0, k, 2k, ...`` of the first ``horizon_days`` days, i.e.
``ceil(horizon_days / k)`` steps.  Anchoring on day 0 (not on the last day) means that a
longer horizon only appends steps, so together with the universe's prefix property the steps
of a shorter horizon are a prefix of those of a longer one.  Each row's metrics are known at
that day's open (see :func:`.synthetic.synthetic_environment`).

Buckets and labels
------------------
An axis ``(start, step, points)`` has edges ``e_i = round(start + i * step, 10)`` for
``i = 0..points`` and buckets ``[e_i, e_{i+1})``: a value equal to a lower edge belongs to
that bucket, a value below ``e_0`` or at/above ``e_points`` is outside the grid (the floor of
``(x - start) / step``, not the truncation toward zero that would pull values up to one step
below ``start`` into the first bucket).  Rounding the edges to 10 decimals keeps float noise
out of both the labels (0.3, not 0.30000000000000004) and the bucket decisions, so a value
printed as a label is exactly that bucket's lower edge.  NaN values are never in the grid.

The functions are pure: numpy arrays in, frozen dataclasses out; no I/O and no cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .data import EnvironmentSeries
from .options_selector_rules import RULES_BY_PARAM, SELECTOR_RULES, selector_allows
from .parameters import ParameterError, did_you_mean
from .synthetic import ENVIRONMENT_METRICS, MAX_DAYS

LABEL_DECIMALS = 10
MAX_INTERVAL_DAYS = 30


def grid_value(start: float, step: float, i: int) -> float:
    """The ``i``-th grid value ``start + i * step`` without float noise (10 decimals)."""
    value = round(start + i * step, LABEL_DECIMALS)
    return value + 0.0  # -0.0 -> 0.0: a label never reads "-0"


def format_value(value: float) -> str:
    """Shortest text of a grid value: 5.0 -> '5', 0.3 -> '0.3', 1e-05 -> '1e-05'."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Axis:
    """``points`` grid values ``start + i * step``; see the module docstring for buckets.

    ``name`` is the request field prefix (``"x"``, ``"y"``, ``""``) used in error messages.
    """

    start: float
    step: float
    points: int
    name: str = ""

    def __post_init__(self) -> None:
        if self.points < 1:
            field = f"{self.name}_points" if self.name else "points"
            raise ParameterError(field, f"{field} must be at least 1, got {self.points}")
        field = f"{self.name}_step" if self.name else "step"
        if not self.step > 0:  # also rejects NaN
            raise ParameterError(field, f"{field} must be > 0, got {format_value(self.step)}")
        values = self.edges()
        if not np.isfinite(values).all():
            raise ParameterError(field, f"{field} takes the grid beyond the float range")
        if not (np.diff(values) > 0).all():
            raise ParameterError(
                field,
                f"{field} {format_value(self.step)} is too small next to the start "
                f"{format_value(self.start)}: grid values must differ within "
                f"{LABEL_DECIMALS} decimals",
            )

    def edges(self) -> np.ndarray:
        """``points + 1`` bucket edges (the last one closes the grid)."""
        return np.array([grid_value(self.start, self.step, i) for i in range(self.points + 1)])

    def labels(self) -> list[float]:
        """The ``points`` grid values: bucket lower edges, or thresholds for a sweep."""
        return [grid_value(self.start, self.step, i) for i in range(self.points)]

    def bucket(self, values: np.ndarray) -> np.ndarray:
        """Bucket index of each value, ``-1`` when outside the grid (below, at/above the
        last edge, or NaN)."""
        edges = self.edges()
        idx = np.searchsorted(edges, values, side="right") - 1
        idx[(idx >= self.points) | np.isnan(values)] = -1
        return idx


@dataclass(frozen=True)
class DecisionSteps:
    """The environment metrics at each decision step (see the module docstring)."""

    horizon_days: int
    decision_interval_days: int
    day: np.ndarray  # int64 day index within the universe
    ts: np.ndarray  # int64 day-open epoch seconds
    metrics: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.day)


def decision_steps(
    env: EnvironmentSeries, *, horizon_days: int, decision_interval_days: int = 1
) -> DecisionSteps:
    """Every ``decision_interval_days``-th day of the first ``horizon_days`` days of ``env``.

    The one loop over decision steps: all three tools consume its arrays (vectorised).
    """
    if not 1 <= decision_interval_days <= MAX_INTERVAL_DAYS:
        raise ParameterError(
            "decision_interval_days",
            f"decision_interval_days must be between 1 and {MAX_INTERVAL_DAYS}, "
            f"got {decision_interval_days}",
        )
    if not 1 <= horizon_days <= min(len(env), MAX_DAYS):
        raise ParameterError(
            "horizon_days",
            f"horizon_days must be between 1 and {min(len(env), MAX_DAYS)}, got {horizon_days}",
        )
    day = np.arange(0, horizon_days, decision_interval_days, dtype=np.int64)
    return DecisionSteps(
        horizon_days=horizon_days,
        decision_interval_days=decision_interval_days,
        day=day,
        ts=env.ts[day],
        metrics={k: v[day] for k, v in env.metrics.items()},
    )


def check_metric(name: str, metric: str) -> str:
    if metric not in ENVIRONMENT_METRICS:
        raise ParameterError(
            name, f"{name}: " + did_you_mean("metric", metric, ENVIRONMENT_METRICS)
        )
    return metric


def check_threshold_name(name: str, param: str) -> str:
    if param not in RULES_BY_PARAM:
        known = [r.param for r in SELECTOR_RULES]
        raise ParameterError(name, f"{name}: " + did_you_mean("threshold", param, known))
    return param


def _pct(count: np.ndarray | int, total: int) -> np.ndarray:
    """Percent of ``total`` rounded to 0.1 (zeros when ``total`` is 0)."""
    count = np.asarray(count, dtype=np.float64)
    if total == 0:
        return np.zeros_like(count)
    return np.round(count / total * 100.0, 1)


# --- environment occupancy -----------------------------------------------------------------


@dataclass(frozen=True)
class EnvironmentHeatmap:
    x_metric: str
    y_metric: str
    x_labels: list[float]
    y_labels: list[float]
    counts: np.ndarray  # int64 (y_points, x_points): decision steps per bucket
    total_steps: int
    in_grid_steps: int

    @property
    def grid(self) -> list[list[float]]:
        """Percent of in-grid decision steps per cell (0.1), rows follow ``y_labels``."""
        return _pct(self.counts, self.in_grid_steps).tolist()

    @property
    def coverage_pct(self) -> float:
        """Percent of all decision steps that fall inside the grid (0.1)."""
        return float(_pct(self.in_grid_steps, self.total_steps))


def environment_heatmap(
    steps: DecisionSteps, *, x_metric: str, y_metric: str, x: Axis, y: Axis
) -> EnvironmentHeatmap:
    """How many decision steps the environment spends in each (x, y) bucket."""
    xv = steps.metrics[check_metric("x_metric", x_metric)]
    yv = steps.metrics[check_metric("y_metric", y_metric)]
    ix, iy = x.bucket(xv), y.bucket(yv)
    inside = (ix >= 0) & (iy >= 0)
    flat = iy[inside] * x.points + ix[inside]
    counts = np.bincount(flat, minlength=x.points * y.points).reshape(y.points, x.points)
    return EnvironmentHeatmap(
        x_metric=x_metric,
        y_metric=y_metric,
        x_labels=x.labels(),
        y_labels=y.labels(),
        counts=counts.astype(np.int64),
        total_steps=len(steps),
        in_grid_steps=int(inside.sum()),
    )


# --- selector frequency ----------------------------------------------------------------------


def _check_sweep(param: str, axis: Axis) -> None:
    """Every swept threshold value must lie within the rule's bounds."""
    rule = RULES_BY_PARAM[param]
    values = axis.labels()
    prefix = f"{axis.name}_" if axis.name else ""
    lo, hi = format_value(rule.low), format_value(rule.high)
    if not rule.low <= values[0] <= rule.high:
        raise ParameterError(
            f"{prefix}start",
            f"{prefix}start must be between {lo} and {hi} for {param}, "
            f"got {format_value(values[0])}",
        )
    if values[-1] > rule.high:
        raise ParameterError(
            f"{prefix}step",
            f"the last {param} value ({prefix}start + ({prefix}points - 1) * {prefix}step = "
            f"{format_value(values[-1])}) exceeds its maximum {hi}; use a smaller "
            f"{prefix}step or fewer {prefix}points",
        )


def _only(param: str, value: float) -> dict[str, float | None]:
    """Thresholds with every rule disabled except ``param``."""
    return {r.param: (value if r.param == param else None) for r in SELECTOR_RULES}


def _allowed_by(steps: DecisionSteps, param: str, values: list[float]) -> np.ndarray:
    """bool (len(values), n): does rule ``param`` alone allow each step at each value."""
    return np.array([selector_allows(steps.metrics, _only(param, v)) for v in values])


@dataclass(frozen=True)
class SelectorScan:
    param: str
    values: list[float]
    allowed_steps: list[int]
    total_steps: int
    thresholds: dict[str, float | None]  # the fixed thresholds (``param`` shows the sweep)

    @property
    def allowed_pct(self) -> list[float]:
        return _pct(np.array(self.allowed_steps), self.total_steps).tolist()


def selector_frequency_scan(
    steps: DecisionSteps, *, param: str, axis: Axis, thresholds: Mapping[str, float | None]
) -> SelectorScan:
    """Steps the selector allows for each value of threshold ``param`` (others fixed).

    ``thresholds`` must be complete and validated (``selector.validate_thresholds``).
    """
    check_threshold_name("param", param)
    _check_sweep(param, axis)
    values = axis.labels()
    base = selector_allows(steps.metrics, {**thresholds, param: None})
    counts = (_allowed_by(steps, param, values) & base).sum(axis=1)
    return SelectorScan(
        param=param,
        values=values,
        allowed_steps=[int(c) for c in counts],
        total_steps=len(steps),
        thresholds={**thresholds, param: None},
    )


@dataclass(frozen=True)
class SelectorHeatmap:
    x_param: str
    y_param: str
    x_labels: list[float]
    y_labels: list[float]
    counts: np.ndarray  # int64 (y_points, x_points): allowed decision steps
    total_steps: int
    thresholds: dict[str, float | None]

    @property
    def grid(self) -> list[list[float]]:
        """Percent of all decision steps allowed per cell (0.1), rows follow ``y_labels``."""
        return _pct(self.counts, self.total_steps).tolist()


def selector_heatmap(
    steps: DecisionSteps,
    *,
    x_param: str,
    y_param: str,
    x: Axis,
    y: Axis,
    thresholds: Mapping[str, float | None],
) -> SelectorHeatmap:
    """Steps the selector allows for each (x threshold, y threshold), others fixed."""
    check_threshold_name("x_param", x_param)
    check_threshold_name("y_param", y_param)
    if x_param == y_param:
        raise ParameterError("y_param", f"y_param must differ from x_param (both {x_param!r})")
    _check_sweep(x_param, x)
    _check_sweep(y_param, y)
    base = selector_allows(steps.metrics, {**thresholds, x_param: None, y_param: None})
    x_ok = _allowed_by(steps, x_param, x.labels()).astype(np.int64)
    y_ok = (_allowed_by(steps, y_param, y.labels()) & base).astype(np.int64)
    return SelectorHeatmap(
        x_param=x_param,
        y_param=y_param,
        x_labels=x.labels(),
        y_labels=y.labels(),
        counts=y_ok @ x_ok.T,
        total_steps=len(steps),
        thresholds={**thresholds, x_param: None, y_param: None},
    )
