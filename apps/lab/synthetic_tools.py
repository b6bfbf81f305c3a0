"""Synthetic environment tools: the cached universe, the metric catalogue, and the three reads.

The API (``apps.lab.api``) and the page (``apps.lab.views.synthetic_tools``) call these
functions; the arithmetic lives in the pure engine (``backtestlab.engine.environment``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from backtestlab.engine import environment as env_engine
from backtestlab.engine.data import EnvironmentSeries
from backtestlab.engine.options_selector_rules import SELECTOR_RULES, validate_thresholds
from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.synthetic import (
    DEFAULT_SEED,
    ENVIRONMENT_METRICS,
    MAX_DAYS,
    SYMBOLS,
    synthetic_environment,
)
from backtestlab.errors import ApplicationError

DEFAULT_HORIZON_DAYS = 365
DEFAULT_DECISION_INTERVAL_DAYS = 1
MIN_POINTS, MAX_POINTS = 2, 20  # heatmap axes
MAX_SCAN_POINTS = 50

# A grid the page proposes when the operator picks a metric: (start, step, points), chosen
# from the synthetic universe's range of each metric (10 years of BTC and ETH).
SUGGESTED_GRIDS: dict[str, tuple[float, float, int]] = {
    "vrp_30d": (-5.0, 2.5, 8),  # vol points, mostly -5..15
    "iv_rank_6m": (0.0, 10.0, 10),  # 0..100
    "chop_factor_7d": (10.0, 10.0, 9),  # 10..100
    "skew_25d": (-15.0, 3.0, 9),  # clipped to -15..10
    "term_structure_spread": (-10.0, 2.5, 9),  # clipped to -10..10
    "adx_14d": (5.0, 5.0, 13),  # mostly 8..70
    "rsi_14d": (0.0, 10.0, 10),  # 0..100
    "price_vs_ma200": (-50.0, 10.0, 14),  # percent, mostly -45..85
}
assert SUGGESTED_GRIDS.keys() == ENVIRONMENT_METRICS.keys()


@functools.lru_cache(maxsize=8)
def environment_series(underlying: str, seed: int = DEFAULT_SEED) -> EnvironmentSeries:
    """The synthetic environment at the longest horizon, generated once per process.

    By the universe's prefix property the first N days of this series equal an N-day
    universe, so every horizon is a slice of it.  (~5 s and ~1 GB of scratch memory the
    first time per underlying; a few hundred kB kept.)
    """
    return synthetic_environment(underlying, days=MAX_DAYS, seed=seed)


def catalogue() -> dict:
    """The one metric and threshold list the page and ``GET /api/environment_metrics`` use."""

    def suggested(metric: str) -> dict:
        start, step, points = SUGGESTED_GRIDS[metric]
        return {"start": start, "step": step, "points": points}

    return {
        "underlyings": list(SYMBOLS),
        "horizon_days": {"default": DEFAULT_HORIZON_DAYS, "min": 1, "max": MAX_DAYS},
        "decision_interval_days": {
            "default": DEFAULT_DECISION_INTERVAL_DAYS,
            "min": 1,
            "max": env_engine.MAX_INTERVAL_DAYS,
        },
        "points": {"min": MIN_POINTS, "max": MAX_POINTS, "scan_max": MAX_SCAN_POINTS},
        "metrics": [
            {"key": key, "label": label, "suggested": suggested(key)}
            for key, label in ENVIRONMENT_METRICS.items()
        ],
        "thresholds": [
            {
                "param": r.param,
                "metric": r.metric,
                "op": r.op,
                "label": r.label,
                "default": r.default,
                "min": r.low,
                "max": r.high,
                "suggested": _threshold_suggestion(r.metric, r.low, r.high),
            }
            for r in SELECTOR_RULES
        ],
    }


def _threshold_suggestion(metric: str, low: float, high: float) -> dict:
    """The metric's suggested grid, clipped to the threshold's bounds."""
    start, step, points = SUGGESTED_GRIDS[metric]
    start = max(start, low)
    while points > 1 and start + (points - 1) * step > high:
        points -= 1
    return {"start": start, "step": step, "points": points}


def _steps(*, underlying: str, horizon_days: int, decision_interval_days: int):
    return env_engine.decision_steps(
        environment_series(underlying),
        horizon_days=horizon_days,
        decision_interval_days=decision_interval_days,
    )


def _application_error(exc: ParameterError) -> ApplicationError:
    return ApplicationError(exc.message, field=exc.field)


def _thresholds(raw: Mapping | None) -> dict[str, float | None]:
    try:
        return validate_thresholds(raw or {})
    except ParameterError as exc:
        field = f"thresholds.{exc.field}"
        message = exc.message
        message = (
            f"thresholds.{message}" if message.startswith(exc.field) else f"{field}: {message}"
        )
        raise ApplicationError(message, field=field) from exc


def environment_heatmap_compute(
    *,
    underlying: str,
    x_metric: str,
    y_metric: str,
    horizon_days: int,
    decision_interval_days: int,
    x_start: float,
    x_step: float,
    x_points: int,
    y_start: float,
    y_step: float,
    y_points: int,
) -> dict:
    """The occupancy heatmap as the API answers it (see ``EnvironmentHeatmapResponse``)."""
    try:
        x = env_engine.Axis(x_start, x_step, x_points, name="x")
        y = env_engine.Axis(y_start, y_step, y_points, name="y")
        env_engine.check_metric("x_metric", x_metric)
        env_engine.check_metric("y_metric", y_metric)
        steps = _steps(
            underlying=underlying,
            horizon_days=horizon_days,
            decision_interval_days=decision_interval_days,
        )
        result = env_engine.environment_heatmap(
            steps, x_metric=x_metric, y_metric=y_metric, x=x, y=y
        )
    except ParameterError as exc:
        raise _application_error(exc) from exc
    return {
        "ok": True,
        "underlying": underlying,
        "x_metric": x_metric,
        "y_metric": y_metric,
        "horizon_days": horizon_days,
        "decision_interval_days": decision_interval_days,
        "x_labels": result.x_labels,
        "y_labels": result.y_labels,
        "grid": result.grid,
        "total_steps": result.total_steps,
        "in_grid_steps": result.in_grid_steps,
        "coverage_pct": result.coverage_pct,
    }


def selector_scan_compute(
    *,
    underlying: str,
    param: str,
    horizon_days: int,
    decision_interval_days: int,
    start: float,
    step: float,
    points: int,
    thresholds: Mapping | None = None,
) -> dict:
    """% of decision steps the selector allows for each value of one threshold."""
    fixed = _thresholds(thresholds)
    try:
        env_engine.check_threshold_name("param", param)
        axis = env_engine.Axis(start, step, points)
        steps = _steps(
            underlying=underlying,
            horizon_days=horizon_days,
            decision_interval_days=decision_interval_days,
        )
        scan = env_engine.selector_frequency_scan(steps, param=param, axis=axis, thresholds=fixed)
    except ParameterError as exc:
        raise _application_error(exc) from exc
    return {
        "ok": True,
        "underlying": underlying,
        "param": param,
        "horizon_days": horizon_days,
        "decision_interval_days": decision_interval_days,
        "values": scan.values,
        "allowed_pct": scan.allowed_pct,
        "allowed_steps": scan.allowed_steps,
        "total_steps": scan.total_steps,
        "thresholds": scan.thresholds,
    }


def selector_heatmap_compute(
    *,
    underlying: str,
    x_param: str,
    y_param: str,
    horizon_days: int,
    decision_interval_days: int,
    x_start: float,
    x_step: float,
    x_points: int,
    y_start: float,
    y_step: float,
    y_points: int,
    thresholds: Mapping | None = None,
) -> dict:
    """% of decision steps the selector allows for each pair of two thresholds."""
    fixed = _thresholds(thresholds)
    try:
        env_engine.check_threshold_name("x_param", x_param)
        env_engine.check_threshold_name("y_param", y_param)
        x = env_engine.Axis(x_start, x_step, x_points, name="x")
        y = env_engine.Axis(y_start, y_step, y_points, name="y")
        steps = _steps(
            underlying=underlying,
            horizon_days=horizon_days,
            decision_interval_days=decision_interval_days,
        )
        result = env_engine.selector_heatmap(
            steps, x_param=x_param, y_param=y_param, x=x, y=y, thresholds=fixed
        )
    except ParameterError as exc:
        raise _application_error(exc) from exc
    return {
        "ok": True,
        "underlying": underlying,
        "x_param": x_param,
        "y_param": y_param,
        "horizon_days": horizon_days,
        "decision_interval_days": decision_interval_days,
        "x_labels": result.x_labels,
        "y_labels": result.y_labels,
        "grid": result.grid,
        "total_steps": result.total_steps,
        "thresholds": result.thresholds,
    }


# The seed's panel defaults (VRP vs ADX); the selector panels start on their suggested grids.
ENVIRONMENT_PANEL_DEFAULTS = {
    "x_metric": "vrp_30d",
    "y_metric": "adx_14d",
    "x_start": 5,
    "x_step": 5,
    "x_points": 5,
    "y_start": 15,
    "y_step": 5,
    "y_points": 5,
}
SCAN_PANEL_PARAM = "min_vrp_30d"
SELECTOR_HEATMAP_PANEL_PARAMS = ("min_vrp_30d", "max_adx_14d")


def page_context() -> dict:
    """What the Synthetic environment tools page renders: the catalogue and initial values."""
    cat = catalogue()
    suggested = {t["param"]: t["suggested"] for t in cat["thresholds"]}
    x_param, y_param = SELECTOR_HEATMAP_PANEL_PARAMS

    def text(grid: dict) -> dict:
        # Input boxes show 5 and 2.5, as the script's suggestions do, not 5.0.
        return {k: env_engine.format_value(v) for k, v in grid.items()}

    return {
        "catalogue": cat,
        "threshold_inputs": [
            {**t, **text({"default": t["default"], "min": t["min"], "max": t["max"]})}
            for t in cat["thresholds"]
        ],
        "env": ENVIRONMENT_PANEL_DEFAULTS,
        "scan": {"param": SCAN_PANEL_PARAM, **text(suggested[SCAN_PANEL_PARAM])},
        "sel": {
            "x_param": x_param,
            "y_param": y_param,
            **{f"x_{k}": v for k, v in text(suggested[x_param]).items()},
            **{f"y_{k}": v for k, v in text(suggested[y_param]).items()},
        },
    }
