"""The strategy interface and the trading costs every run is given."""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backtest_result import BacktestResult
from ..data import MarketData
from ..parameters import ParameterError, ParameterSpace


@dataclass(frozen=True)
class Costs:
    """Trading costs.  Percent units: ``commission_pct=0.1`` means 0.1 % per side of traded
    value; ``slippage_pct`` worsens every fill by that percentage; ``initial_equity`` is in
    quote currency."""

    commission_pct: float = 0.1
    slippage_pct: float = 0.05
    initial_equity: float = 10_000.0
    # Stress test only (evaluation.stress): orders reach the market this many bars late.
    # ``Strategy.run`` honours it; the ``run_many`` sweep paths do not (sweep.run_params
    # refuses it), and the job API never sets it.
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


class Strategy(ABC):
    """A trading strategy.

    ``prepare`` builds a per-dataset context (cache indicators there, lazily); ``run`` is
    the detailed single backtest; ``run_many`` is the compiled fast path that returns only
    the metrics matrix and must agree exactly with ``compute(run(...))``.
    """

    key: str
    label: str
    description: str
    data_kind: str = "candles"
    # Other series of the same symbol the strategy reads besides its dataset, e.g.
    # ("funding",): the lab finds them and passes them to ``prepare`` by kind.
    companion_kinds: tuple[str, ...] = ()
    # Parameters whose values split the results into separate "best" groups (e.g. an SMC
    # job's pattern_type: best parameters per pattern).
    group_by: tuple[str, ...] = ()
    # Candle timeframes the strategy can run on (None = any); checked when a job is created.
    timeframes: tuple[str, ...] | None = None

    @abstractmethod
    def parameter_space(self) -> ParameterSpace: ...

    @abstractmethod
    def prepare(self, data: MarketData, companions: Mapping[str, Any] | None = None) -> Any: ...

    @abstractmethod
    def run(self, ctx: Any, params: dict, costs: Costs) -> BacktestResult: ...

    @abstractmethod
    def run_many(self, ctx: Any, param_list: Sequence[dict], costs: Costs) -> np.ndarray:
        """Metrics matrix, shape ``(len(param_list), len(METRIC_NAMES))``, float64."""
