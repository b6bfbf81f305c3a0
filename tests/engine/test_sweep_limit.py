"""The hand-written limit loop of the sma_cross sweep: an independent re-implementation of
its rules, so its numbers must be the engine's (and the bench's ratio compares like with like)."""

from __future__ import annotations

import numpy as np

from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.sweep import grid_size, params_range
from backtestlab.engine.throughput import limit_sweep


def test_the_limit_loop_computes_the_engines_metrics(hourly_btc):
    strategy = get_strategy("sma_cross")
    grid = strategy.parameter_space().validate_grid(
        {"fast": [5, 10, 20, 60], "slow": [20, 50, 100], "sl_pct": [0.5, 2.0, 8.0],
         "rr": [1.0, 3.0]},
        max_combinations=1000,
    )  # fmt: skip
    params = params_range(grid, 0, grid_size(grid))
    costs = Costs(commission_pct=0.1, slippage_pct=0.05)
    engine = strategy.run_many(strategy.prepare(hourly_btc), params, costs)
    limit = limit_sweep(hourly_btc, params, costs)
    assert engine.shape == limit.shape == (72, 16)
    assert np.nansum(engine[:, 11]) > 500  # n_trades: the grid trades
    assert (engine[:, 11] == 0).sum() >= 6  # fast >= slow never trades, in both
    np.testing.assert_array_equal(limit, engine)
