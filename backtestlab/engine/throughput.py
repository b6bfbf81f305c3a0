"""Engine throughput: the sma_cross sweep, a Monte Carlo and a walk-forward, timed.

Pure functions, no I/O; ``manage.py bench`` prints them.
"""

from __future__ import annotations

import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .evaluation.monte_carlo import run_monte_carlo
from .evaluation.walk_forward import walk_forward
from .indicators import sma
from .metrics import N_METRICS
from .parameters import Param, ParameterSpace
from .signals import Levels, Signals
from .simulate import cost_fractions
from .strategies import get_strategy
from .strategies.base import Costs, Strategy
from .sweep import grid_size, params_range
from .sweep_limit import limit_loop
from .synthetic import resample, synthetic_candles
from .timeframes import bars_per_year

SWEEP_GRID = {
    "fast": {"start": 5, "stop": 50, "step": 5},
    "slow": {"start": 20, "stop": 200, "step": 20},
    "sl_pct": [1.0, 2.0, 3.0],
    "rr": [1.5, 2.0, 3.0],
}


def sweep_throughput(repeats: int = 3) -> dict:
    """Time the 900-combination ``sma_cross`` sweep on one year of hourly BTC candles.

    Data generation and numba compilation (warm-up) are excluded; each timed repeat uses a
    fresh context, so indicator computation (one SMA per distinct window) is included.

    Returns
    -------
    dict
        ``combinations``, ``bars``, ``seconds`` (best of ``repeats``, wall clock) and
        ``backtests_per_second``.
    """
    data = resample(synthetic_candles("BTC", days=365), "1h")
    strategy = get_strategy("sma_cross")
    grid = strategy.parameter_space().validate_grid(SWEEP_GRID, max_combinations=10_000)
    params = params_range(grid, 0, grid_size(grid))
    costs = Costs()
    strategy.run_many(strategy.prepare(data), params, costs)  # compile + warm caches
    best = float("inf")
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        ctx = strategy.prepare(data)
        strategy.run_many(ctx, params, costs)
        best = min(best, time.perf_counter() - t0)
    return {
        "combinations": len(params),
        "bars": len(data),
        "seconds": best,
        "backtests_per_second": len(params) / best,
    }


def limit_sweep(data, params: list[dict], costs: Costs) -> np.ndarray:
    """The sma_cross sweep through the hand-written :func:`~.sweep_limit.limit_loop` (SMAs
    once per window, then one fused pass per combination)."""
    fast = np.array([p["fast"] for p in params], dtype=np.int64)
    slow = np.array([p["slow"] for p in params], dtype=np.int64)
    windows = np.unique(np.concatenate([fast, slow]))
    smas = np.stack([sma(data.close, int(w)) for w in windows])
    sl = np.array([p["sl_pct"] for p in params], dtype=np.float64)
    rr = np.array([p["rr"] for p in params], dtype=np.float64)
    out = np.empty((len(params), N_METRICS))
    comm, slip = cost_fractions(costs)
    limit_loop(
        data.ts, data.open, data.high, data.low, data.close, smas,
        np.searchsorted(windows, fast), np.searchsorted(windows, slow), fast, slow,
        sl / 100.0, sl * rr / 100.0, comm, slip, float(costs.initial_equity),
        bars_per_year(data.timeframe), out,
    )  # fmt: skip
    return out


def limit_throughput(repeats: int = 3) -> dict:
    """The 900-combination sweep of :func:`sweep_throughput` through the hand-written limit
    loop (same data, same timing rules)."""
    data = resample(synthetic_candles("BTC", days=365), "1h")
    strategy = get_strategy("sma_cross")
    grid = strategy.parameter_space().validate_grid(SWEEP_GRID, max_combinations=10_000)
    params = params_range(grid, 0, grid_size(grid))
    costs = Costs()
    limit_sweep(data, params, costs)  # compile
    best = float("inf")
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        limit_sweep(data, params, costs)
        best = min(best, time.perf_counter() - t0)
    return {
        "combinations": len(params),
        "seconds": best,
        "backtests_per_second": len(params) / best,
    }


class NumpyBreakout(Strategy):
    """A team's strategy as a user would write it, numpy only (no numba): a Donchian
    breakout.  Long when the close breaks the highest high of the previous ``entry_bars``;
    out when it breaks the lowest low of the previous ``exit_bars``; stop and target."""

    key = "numpy_breakout"
    label = "Donchian breakout (numpy, bench)"
    parameters = ParameterSpace(
        [
            Param("entry_bars", "int", 20, 2, 500),
            Param("exit_bars", "int", 10, 2, 500),
            Param("sl_pct", "float", 2.0, 0.1, 50, role="exit"),
            Param("rr", "float", 2.0, 0.1, 20, role="exit"),
        ]
    )

    def _prior_extreme(self, ctx, series: str, bars: int, how) -> np.ndarray:
        def compute():
            x = getattr(ctx.data, series)
            out = np.full(len(x), np.nan)
            if len(x) > bars:
                out[bars:] = how(sliding_window_view(x, bars)[:-1], axis=1)
            return out

        return ctx.cached((series, bars), compute)

    def signals(self, ctx, p):
        close = ctx.data.close
        upper = self._prior_extreme(ctx, "high", p.entry_bars, np.max)
        lower = self._prior_extreme(ctx, "low", p.exit_bars, np.min)
        return Signals(entries=close > upper, exits=close < lower)

    def levels(self, p):
        return Levels(stop_pct=p.sl_pct, target_pct=p.sl_pct * p.rr)

    def warmup(self, p):
        return max(p["entry_bars"], p["exit_bars"])


NUMPY_GRID = {
    "entry_bars": {"start": 10, "stop": 100, "step": 10},
    "exit_bars": {"start": 5, "stop": 50, "step": 5},
    "sl_pct": [1.0, 2.0, 3.0],
    "rr": [1.5, 2.0, 3.0],
}


def numpy_strategy_throughput(repeats: int = 3) -> dict:
    """A 900-combination sweep of :class:`NumpyBreakout` on a year of hourly BTC (fresh
    context each repeat: its rolling extremes are part of the time)."""
    data = resample(synthetic_candles("BTC", days=365), "1h")
    strategy = NumpyBreakout()
    grid = strategy.parameter_space().validate_grid(NUMPY_GRID, max_combinations=10_000)
    params = params_range(grid, 0, grid_size(grid))
    costs = Costs()
    strategy.run_many(strategy.prepare(data), params, costs)  # compile the engine
    best = float("inf")
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        strategy.run_many(strategy.prepare(data), params, costs)
        best = min(best, time.perf_counter() - t0)
    return {
        "combinations": len(params),
        "seconds": best,
        "backtests_per_second": len(params) / best,
    }


def monte_carlo_seconds(sims: int = 10_000, trades_per_sim: int = 1_000, repeats: int = 3) -> dict:
    """Best-of wall time of a bootstrap Monte Carlo (percentile bands included)."""
    returns = np.random.default_rng(0).normal(0.001, 0.01, 500)
    run_monte_carlo(returns, sims=10, trades_per_sim=10, seed=1)  # compile
    best = float("inf")
    for k in range(max(1, repeats)):
        t0 = time.perf_counter()
        run_monte_carlo(returns, sims=sims, trades_per_sim=trades_per_sim, seed=k)
        best = min(best, time.perf_counter() - t0)
    return {"sims": sims, "trades_per_sim": trades_per_sim, "seconds": best}


def walk_forward_ratio(n_splits: int = 5, repeats: int = 2) -> dict:
    """A 5-fold walk-forward of the 900-combination sma_cross sweep vs the single sweep."""
    data = resample(synthetic_candles("BTC", days=365), "1h")
    strategy = get_strategy("sma_cross")
    grid = strategy.parameter_space().validate_grid(SWEEP_GRID, max_combinations=10_000)
    params = params_range(grid, 0, grid_size(grid))
    costs = Costs()
    strategy.run_many(strategy.prepare(data), params, costs)  # compile
    sweep_s = wf_s = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        strategy.run_many(strategy.prepare(data), params, costs)
        sweep_s = min(sweep_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        walk_forward(strategy, data, params, costs, n_splits=n_splits)
        wf_s = min(wf_s, time.perf_counter() - t0)
    return {
        "combinations": len(params),
        "n_splits": n_splits,
        "sweep_seconds": sweep_s,
        "walk_forward_seconds": wf_s,
        "ratio": wf_s / sweep_s,
    }


def market_state_year_seconds(repeats: int = 3) -> dict:
    """Time one ``market_state`` backtest on a year of 1-minute BTC candles (525,600 bars).

    ``first_seconds`` is prepare (volume profile of the lookback, candle order flow) plus one
    run; ``again_seconds`` is a second parameter set on the same context. Data generation and
    numba compilation (a warm-up on 200 flat bars) are excluded; best of ``repeats``. The seed
    asks for under a second each.
    """
    strategy = get_strategy("market_state")
    costs = Costs()
    data = synthetic_candles("BTC", days=365, seed=42)
    warm = synthetic_candles("BTC", days=1, seed=42)
    strategy.run(strategy.prepare(warm), {}, costs)  # compile
    first = again = float("inf")
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        ctx = strategy.prepare(data)
        strategy.run(ctx, {}, costs)
        first = min(first, time.perf_counter() - t0)
        t0 = time.perf_counter()
        strategy.run(ctx, {"poc_distance_threshold": 0.5}, costs)
        again = min(again, time.perf_counter() - t0)
    return {"bars": len(data), "first_seconds": first, "again_seconds": again}
