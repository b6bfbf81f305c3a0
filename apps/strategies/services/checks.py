"""The look-ahead and warm-up checks of a strategy, on synthetic data or a stored dataset.

Used by ``manage.py check_strategy`` and the strategy page's *Check* button; the checks
themselves are :func:`backtestlab.engine.checks.check_strategy`.

Without a dataset the data is the synthetic universe's: hourly candles, 1-minute candles for a
strategy whose ``timeframes`` are ``("1m",)`` (another single timeframe is resampled to), a
daily environment for ``data_kind = "environment"``, and the companions the strategy declares
(funding, daily candles, environment) over the same days.  Default lengths: 90 days of
candles, 3 days of minutes, 365 environment days, or more when the strategy's default warm-up
needs it.  With a dataset, the dataset and its companions are loaded as a job on it would see
them, cut to the last ``days`` days when given.
"""

from __future__ import annotations

import datetime as dt
import math

from apps.market.models import Dataset
from apps.market.selectors import dataset_companion
from apps.optimization.gateway import window_data
from backtestlab.engine.checks import StrategyCheck, check_strategy
from backtestlab.engine.runner import warmup_bars
from backtestlab.engine.synthetic import (
    resample,
    synthetic_candles,
    synthetic_environment,
    synthetic_funding,
)
from backtestlab.engine.timeframes import TIMEFRAME_SECONDS
from backtestlab.errors import ApplicationError

DEFAULT_DAYS = {"candles": 90, "minutes": 3, "environment": 365}


def _timeframe(strategy) -> str:
    """The candle timeframe to synthesise: 1h unless the strategy runs on one other only."""
    allowed = strategy.timeframes
    if not allowed or "1h" in allowed:
        return "1h"
    return allowed[0]


def _days_for_warmup(strategy, bar_seconds: int) -> int:
    """Days of data that hold the default parameters' warm-up four times over (the checks
    sample parameter sets whose warm-up fits a quarter of the data)."""
    space = strategy.parameter_space()
    bars = warmup_bars(strategy, space.validate_params(space.defaults()), bar_seconds)
    return math.ceil(4 * bars * bar_seconds / 86400)


def synthetic_inputs(strategy, symbol: str, days: int | None):
    """``(data, companions, description)`` of the synthetic universe for ``strategy``."""
    if strategy.data_kind == "environment":
        days = days or DEFAULT_DAYS["environment"]
        data = synthetic_environment(symbol, days=days)
        what = f"{days} days of {symbol} environment"
    else:
        tf = _timeframe(strategy)
        days = days or max(
            DEFAULT_DAYS["minutes" if tf == "1m" else "candles"],
            _days_for_warmup(strategy, TIMEFRAME_SECONDS[tf]),
        )
        minutes = synthetic_candles(symbol, days=days)
        data = minutes if tf == "1m" else resample(minutes, tf)
        what = f"{days} days of {symbol} {tf} candles"
    companions = {}
    for kind in strategy.companion_kinds:
        if kind == "funding":
            companions[kind] = synthetic_funding(symbol, days=days)
        elif kind == "candles":
            companions[kind] = resample(synthetic_candles(symbol, days=days), "1d")
        elif kind == "environment":
            companions[kind] = synthetic_environment(symbol, days=days)
        else:
            raise ApplicationError(
                f"no synthetic {kind!r} series for {strategy.key}; check it on a dataset"
            )
    if companions:
        what += " with " + ", ".join(companions)
    return data, companions or None, "synthetic " + what


def dataset_inputs(strategy, dataset_id: int, days: int | None):
    """``(data, companions, description)`` of a stored dataset, as a job would load it."""
    dataset = Dataset.objects.filter(id=dataset_id).first()
    if dataset is None:
        raise ApplicationError(f"dataset {dataset_id} does not exist", field="dataset")
    if dataset.kind != strategy.data_kind:
        raise ApplicationError(
            f"{strategy.key} runs on {strategy.data_kind} datasets; dataset {dataset_id} "
            f"({dataset}) holds {dataset.kind}"
        )
    if strategy.timeframes and dataset.timeframe not in strategy.timeframes:
        raise ApplicationError(
            f"{strategy.key} runs on {', '.join(strategy.timeframes)} candles; dataset "
            f"{dataset_id} is {dataset.timeframe}"
        )
    date_from = dataset.end - dt.timedelta(days=days) if days else None
    companions = {}
    for kind in strategy.companion_kinds:
        companion = dataset_companion(dataset, kind)
        if companion is None:
            raise ApplicationError(
                f"{strategy.key} needs the {kind} series of {dataset.symbol}; there is no "
                f"{kind} dataset for {dataset.symbol}"
            )
        companions[kind] = window_data(companion, date_from)
    what = f"dataset {dataset_id} ({dataset})" + (f", last {days} days" if days else "")
    return window_data(dataset, date_from), companions or None, what


def strategy_check(
    strategy,
    *,
    dataset_id: int | None = None,
    days: int | None = None,
    symbol: str = "BTC",
    cuts: int = 5,
    rtol: float = 1e-9,
) -> tuple[StrategyCheck, str]:
    """Run the checks; returns the result and a description of the data they ran on."""
    try:
        if dataset_id is None:
            data, companions, what = synthetic_inputs(strategy, symbol, days)
        else:
            data, companions, what = dataset_inputs(strategy, dataset_id, days)
        return check_strategy(strategy, data, companions, cuts=cuts, warmup_rtol=rtol), what
    except ValueError as exc:
        raise ApplicationError(f"the checks could not run: {exc}") from None
