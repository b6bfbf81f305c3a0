"""Sweep-throughput benchmark (pure function, no I/O)."""

from __future__ import annotations

import time

from .strategies import get_strategy
from .strategies.base import Costs
from .sweep import grid_size, params_range
from .synthetic import resample, synthetic_candles

BENCHMARK_GRID = {
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
    grid = strategy.parameter_space().validate_grid(BENCHMARK_GRID, max_combinations=10_000)
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
