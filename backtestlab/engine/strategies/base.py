"""The strategy contract, and the trading costs every run is given.

A strategy declares its parameters (:class:`ParameterSpace`: names, types, defaults, bounds or
choices, constraints such as ``"fast < slow"``, and each parameter's role), and writes

* ``signals(ctx, p)`` -> :class:`Signals`: entries and exits (and optionally side, limit,
  stop and target levels, size, cash flows) as arrays, from the signal parameters ``p``;
* optionally ``levels(p)`` -> :class:`Levels`: stop, target and size from the exit and sizing
  parameters (numpy arithmetic: in a sweep each ``p.name`` is an array over combinations);
* optionally ``prepare(data, companions)``: its per-dataset context (default
  :class:`~backtestlab.engine.context.Context`, which caches indicators);
* optionally ``warmup(p)``: bars of history its indicators need before the first signal;
* optionally ``signals_batch(ctx, rows)``: the signals of many parameter sets at once as
  (G, n) arrays, when a compiled loop over them is faster than one call each.

The engine owns the rest (:mod:`backtestlab.engine.runner`): :meth:`Strategy.run` (one
detailed backtest) and :meth:`Strategy.run_many` (the compiled sweep), the one simulator, the
costs and the metrics.  A strategy never writes a sweep loop.
"""

from __future__ import annotations

import datetime
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import runner
from ..backtest_result import BacktestResult
from ..context import Context
from ..data import MarketData
from ..parameters import ParameterError, ParameterSpace
from ..signals import Levels, Params, Signals


@dataclass(frozen=True)
class Costs:
    """Trading costs.  Percent units: ``commission_pct=0.1`` means 0.1 % per side of traded
    value; ``slippage_pct`` worsens every fill by that percentage; ``initial_equity`` is in
    quote currency."""

    commission_pct: float = 0.1
    slippage_pct: float = 0.05
    initial_equity: float = 10_000.0
    # Stress test only (evaluation.stress): orders reach the market this many bars late.
    # ``Strategy.run`` honours it; ``run_many`` refuses it, and the job API never sets it.
    signal_delay_bars: int = 0

    def __post_init__(self) -> None:
        for name in ("commission_pct", "slippage_pct", "initial_equity"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ParameterError(name, f"{name} must be a finite number, got {v!r}")
        if not 0 <= self.commission_pct < 100:
            raise ParameterError("commission_pct", "commission_pct must be in [0, 100)")
        if not 0 <= self.slippage_pct < 100:
            raise ParameterError("slippage_pct", "slippage_pct must be in [0, 100)")
        if self.initial_equity <= 0:
            raise ParameterError("initial_equity", "initial_equity must be positive")
        d = self.signal_delay_bars
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or not 0 <= d <= 1000:
            raise ParameterError(
                "signal_delay_bars", f"signal_delay_bars must be an integer 0..1000, got {d!r}"
            )


class Strategy:
    """A trading strategy (see the module docstring for the contract)."""

    key: str
    label: str
    description: str = ""
    parameters: ParameterSpace
    data_kind: str = "candles"
    # Other series of the same symbol the strategy reads besides its dataset, e.g.
    # ("funding",): the lab finds them and passes them to ``prepare`` by kind.
    companion_kinds: tuple[str, ...] = ()
    # Parameters whose values split the results into separate "best" groups (e.g. an SMC
    # job's pattern_type: best parameters per pattern).
    group_by: tuple[str, ...] = ()
    # Candle timeframes the strategy can run on (None = any); checked when a job is created.
    timeframes: tuple[str, ...] | None = None
    # Hold an equal and opposite second leg (delta-neutral carry); see simulate.py.
    hedged: bool = False
    # False when the strategy prices trading costs into its own signals (the options
    # selector's premium): the simulator's fills are then free.
    simulator_costs: bool = True

    def parameter_space(self) -> ParameterSpace:
        return self.parameters

    def prepare(self, data: MarketData, companions: Mapping[str, Any] | None = None) -> Any:
        """Per-dataset context handed to ``signals`` (indicators cached per argument)."""
        return Context(data, companions)

    def bars(self, ctx: Any) -> MarketData:
        """The bars the simulator trades on (``ctx.data`` unless a strategy says otherwise)."""
        return ctx.data

    def signals(self, ctx: Any, p: Params) -> Signals:
        raise NotImplementedError(f"{type(self).__name__} must define signals(ctx, p)")

    def levels(self, p: Params) -> Levels | None:
        """Stops, targets and size from the exit and sizing parameters (none by default)."""
        return None

    def warmup(self, p: Params) -> int | datetime.timedelta:
        """History needed before the first bar whose signals can be trusted (the longest
        lookback): a number of bars, or a :class:`datetime.timedelta` for history measured in
        time.  ``p`` holds every parameter (``p.name`` or ``p["name"]``).  Checked by
        ``manage.py check_strategy``; jobs do not trim it from the data."""
        return 0

    def run(self, ctx: Any, params: Mapping[str, Any], costs: Costs) -> BacktestResult:
        """One detailed backtest (trades, equity) on the engine's one simulator."""
        return runner.run(self, ctx, params, costs)

    def run_many(self, ctx: Any, param_list: Sequence[Mapping], costs: Costs) -> np.ndarray:
        """Metrics matrix, shape ``(len(param_list), len(METRIC_NAMES))``, float64; row k is
        exactly ``compute_row(run(ctx, param_list[k], costs))``."""
        return runner.run_many(self, ctx, param_list, costs)
