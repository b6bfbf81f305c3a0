"""Funding carry, simple vs composite side by side (seed 001): one question, one function.

:func:`carry_compare_run` runs the ``funding_carry`` strategy twice - ``strategy_mode="simple"`` and
``strategy_mode="composite"`` - on the same candles, the same funding series and the same period,
with the same parameter overrides and costs, and returns both metric sets and both equity
curves (downsampled to at most :data:`MAX_POINTS` points, first and last bar included).
The lab page (``/lab/carry/compare/``) and the API (``POST /api/carry/compare``) call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from apps.market.models import Dataset
from apps.market.selectors import dataset_companion
from apps.optimization.gateway import result_metrics, window_data
from apps.optimization.services.validation import costs_validate, date_validate
from backtestlab.engine.metrics import METRICS
from backtestlab.engine.parameters import ParameterError, did_you_mean
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.errors import ApplicationError

STRATEGY = "funding_carry"
MODES = ("simple", "composite")
MAX_POINTS = 1000
# The inputs the page offers (the API accepts every parameter but strategy_mode).
PAGE_PARAMS = ("min_funding_rate", "exit_funding_rate", "entry_threshold", "exit_threshold")


def carry_datasets():
    """Candle datasets whose symbol has a funding series (what the comparison can run on)."""
    symbols = Dataset.objects.filter(kind=Dataset.Kind.FUNDING).values_list("symbol", flat=True)
    return Dataset.objects.filter(kind=Dataset.Kind.CANDLES, symbol__in=symbols).order_by(
        "symbol", "timeframe", "name"
    )


def _dataset(dataset_id: Any) -> tuple[Dataset, Dataset]:
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, int):
        raise ApplicationError(
            f"dataset must be a candle dataset id (an integer), got {dataset_id!r}",
            field="dataset",
        )
    ds = Dataset.objects.filter(id=dataset_id).first()
    if ds is None:
        raise ApplicationError(
            f"dataset {dataset_id} does not exist; list the datasets at /api/datasets/",
            field="dataset",
        )
    if ds.kind != Dataset.Kind.CANDLES:
        raise ApplicationError(
            f"dataset {ds.id} ({ds.name}) holds {ds.kind}; send a candle dataset, its funding "
            "series is found automatically",
            field="dataset",
        )
    funding = dataset_companion(ds, Dataset.Kind.FUNDING)
    if funding is None:
        raise ApplicationError(
            f"dataset {ds.id} ({ds.name}) has no funding series for {ds.symbol}; "
            "generate it with make_synthetic or import it",
            field="dataset",
        )
    return ds, funding


def _params(overrides: Any) -> dict[str, Any]:
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ApplicationError(
            "params must be an object of funding_carry parameters, e.g. "
            '{"min_funding_rate": 0.0002}',
            field="params",
        )
    space = get_strategy(STRATEGY).parameter_space()
    known = [n for n in space.names if n != "strategy_mode"]
    out = {}
    for name, value in overrides.items():
        if name not in known:
            hint = (
                "strategy_mode is set by the comparison (both are run)"
                if name == "strategy_mode"
                else did_you_mean("parameter", name, known)
            )
            raise ApplicationError(f"params.{name}: {hint}", field=f"params.{name}")
        try:
            out[name] = space[name].coerce(value)
        except ParameterError as exc:
            message = f"params.{name}: {exc.message}"
            raise ApplicationError(message, field=f"params.{name}") from None
    return out


def downsample(ts: np.ndarray, values: np.ndarray, max_points: int = MAX_POINTS):
    """At most ``max_points`` evenly spaced samples, always with the first and last one."""
    n = len(ts)
    if n <= max_points:
        idx = np.arange(n)
    else:
        idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    return [int(t) for t in ts[idx]], [float(v) for v in values[idx]]


def carry_compare_run(
    *,
    dataset_id: Any,
    date_from: Any = None,
    date_to: Any = None,
    params: Any = None,
    costs: Any = None,
) -> dict:
    """Both modes on the same data and period; raises ApplicationError naming the field."""
    ds, funding_ds = _dataset(dataset_id)
    start_at = date_validate("date_from", date_from)
    end_at = date_validate("date_to", date_to)
    if start_at and end_at and start_at >= end_at:
        raise ApplicationError("date_from must be before date_to", field="date_from")
    overrides = _params(params)
    valid_costs = costs_validate(costs)
    candles = window_data(ds, start_at, end_at)
    if len(candles) < 2:
        raise ApplicationError(
            f"dataset {ds.id} has {len(candles)} candle(s) between date_from and date_to; "
            f"it covers {ds.start:%Y-%m-%d} to {ds.end:%Y-%m-%d}",
            field="date_from",
        )
    funding = window_data(funding_ds, start_at, end_at)
    strategy = get_strategy(STRATEGY)
    ctx = strategy.prepare(candles, {"funding": funding})
    engine_costs = Costs(**valid_costs)
    results = []
    for mode in MODES:
        run_params = strategy.parameter_space().validate_params(
            {**overrides, "strategy_mode": mode}
        )
        result = strategy.run(ctx, run_params, engine_costs)
        ts, equity = downsample(result.ts, result.equity)
        results.append(
            {
                "strategy_mode": mode,
                "params": run_params,
                "metrics": result_metrics(result),
                "equity": {"ts": ts, "equity": equity},
            }
        )
    return {
        "ok": True,
        "strategy": STRATEGY,
        "dataset": {"id": ds.id, "name": ds.name, "symbol": ds.symbol, "timeframe": ds.timeframe},
        "funding_dataset": {"id": funding_ds.id, "name": funding_ds.name},
        "date_from": int(candles.ts[0]),
        "date_to": int(candles.ts[-1]),
        "bars": len(candles),
        "funding_periods": len(funding),
        "costs": valid_costs,
        "results": results,
    }


# --- presentation: the page draws the service's data ---------------------------------------

CHART_W, CHART_H, PAD = 860, 260, 8
COMPARE_METRICS = (
    "total_return_pct", "cagr_pct", "sharpe", "max_drawdown_pct", "n_trades", "win_rate",
    "expectancy_pct", "exposure_pct",
)  # fmt: skip


def chart(result: dict) -> dict:
    """Both equity curves as SVG polyline points on one shared scale (server-side)."""
    series = [(r["equity"]["ts"], r["equity"]["equity"]) for r in result["results"]]
    t0 = min(s[0][0] for s in series)
    t1 = max(s[0][-1] for s in series)
    lo = min(min(s[1]) for s in series)
    hi = max(max(s[1]) for s in series)
    span_t = (t1 - t0) or 1
    span_v = (hi - lo) or 1.0

    def points(ts, values):
        return " ".join(
            f"{PAD + (t - t0) / span_t * (CHART_W - 2 * PAD):.1f},"
            f"{PAD + (hi - v) / span_v * (CHART_H - 2 * PAD):.1f}"
            for t, v in zip(ts, values, strict=True)
        )

    return {
        "width": CHART_W,
        "height": CHART_H,
        "lines": [
            {"strategy_mode": r["strategy_mode"], "points": points(*s)}
            for r, s in zip(result["results"], series, strict=True)
        ],
        "high": hi,
        "low": lo,
    }


def metric_rows(result: dict) -> list[dict]:
    return [
        {
            "label": METRICS[name].label,
            "unit": METRICS[name].unit,
            "values": [r["metrics"][name] for r in result["results"]],
        }
        for name in COMPARE_METRICS
    ]
