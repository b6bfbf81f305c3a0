"""Walk-forward optimisation: the windows, each fold's train best tested out of sample."""

import pytest

from backtestlab.engine import sweep
from backtestlab.engine.evaluation import walk_forward
from backtestlab.engine.metrics import compute_row
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs

GRID = {"fast": [5, 10, 20], "slow": [30, 60], "sl_pct": [1.0, 2.0], "rr": [2.0]}


def test_windows_tile_the_end_of_the_data():
    folds = walk_forward.walk_forward_windows(1000, n_splits=5)
    tests = [f[1] for f in folds]
    assert tests[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(tests, tests[1:], strict=False))
    for (tr_lo, tr_hi), (te_lo, te_hi) in folds:
        assert tr_hi == te_lo
        assert (tr_hi - tr_lo) / (te_hi - te_lo) == pytest.approx(0.7 / 0.3, rel=0.05)
    anchored = walk_forward.walk_forward_windows(1000, n_splits=5, anchored=True)
    assert all(f[0][0] == 0 for f in anchored)
    with pytest.raises(ValueError, match="too few"):
        walk_forward.walk_forward_windows(10, n_splits=5)
    with pytest.raises(ValueError, match="must be 1"):
        walk_forward.walk_forward_windows(1000, train_frac=0.6, test_frac=0.3)


def test_walk_forward_picks_the_train_best_and_tests_it_out_of_sample(hourly_btc):
    strategy = get_strategy("sma_cross")
    params = sweep.params_range(GRID, 0, sweep.grid_size(GRID))
    res = walk_forward.walk_forward(strategy, hourly_btc, params, Costs(), n_splits=3)
    assert len(res.folds) == 3
    f = res.folds[0]
    (tr_lo, tr_hi), (te_lo, te_hi) = walk_forward.walk_forward_windows(len(hourly_btc),
                                                                       n_splits=3)[0]  # fmt: skip
    train = hourly_btc.slice_time(int(hourly_btc.ts[tr_lo]), int(hourly_btc.ts[tr_hi]))
    matrix = strategy.run_many(strategy.prepare(train), params, Costs())
    assert f.grid_index == walk_forward.best_row(matrix, "sharpe")
    assert f.params == params[f.grid_index]
    test = hourly_btc.slice_time(int(hourly_btc.ts[te_lo]), int(hourly_btc.ts[te_hi]))
    oos = compute_row(strategy.run(strategy.prepare(test), f.params, Costs()))
    assert f.oos_value == pytest.approx(oos[2], nan_ok=True)
    s = res.summary
    if s["is_mean"] > 0:
        assert s["wfe"] == pytest.approx(s["oos_mean"] / s["is_mean"])
