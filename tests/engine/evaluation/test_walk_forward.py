"""Walk-forward optimisation: the windows, each fold's train best tested out of sample."""

import math

import numpy as np
import pytest

from backtestlab.engine import sweep
from backtestlab.engine.evaluation import walk_forward
from backtestlab.engine.metrics import METRIC_NAMES, compute_row
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.synthetic import resample, synthetic_candles

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
    # The summary is the mean over the folds scored on both sides (sharpe: no annualising).
    scored = [g for g in res.folds if math.isfinite(g.is_value) and math.isfinite(g.oos_value)]
    assert len(scored) == 3
    s = res.summary
    assert s["folds"] == 3 and s["folds_scored"] == 3
    assert s["is_mean"] == pytest.approx(sum(g.is_value for g in scored) / 3)
    assert s["oos_mean"] == pytest.approx(sum(g.oos_value for g in scored) / 3)
    assert s["is_mean"] > 0  # the best of a train sweep: the ratio below is defined
    assert s["wfe"] == pytest.approx(s["oos_mean"] / s["is_mean"])
    assert s["oos_positive_folds"] == sum(g.oos_value > 0 for g in scored)


def test_walk_forward_efficiency_is_undefined_without_an_in_sample_gain():
    """WFE = mean OOS / mean IS over the folds scored on both sides; NaN when the IS mean is
    not positive (a ratio of two losses would read as efficiency) or nothing was scored."""
    folds = [
        {"is_value": 2.0, "oos_value": 1.0, "train_years": 1.0, "test_years": 0.5},
        {"is_value": 1.0, "oos_value": -0.5, "train_years": 1.0, "test_years": 0.5},
        {"is_value": None, "oos_value": 3.0, "train_years": 1.0, "test_years": 0.5},
    ]
    s = walk_forward.walk_forward_efficiency(folds, "sharpe")
    # scored: the first two; is_mean = (2 + 1) / 2 = 1.5, oos_mean = (1 - 0.5) / 2 = 0.25
    assert (s["is_mean"], s["oos_mean"]) == (1.5, 0.25)
    assert s["wfe"] == pytest.approx(0.25 / 1.5)
    assert (s["folds"], s["folds_scored"], s["oos_positive_folds"]) == (3, 2, 2)
    # total_return_pct is compared per year: 2 / 1 y = 2 and 1 / 0.5 y = 2 -> WFE 1
    per_year = walk_forward.walk_forward_efficiency(folds[:1], "total_return_pct")
    assert (per_year["is_mean"], per_year["oos_mean"], per_year["wfe"]) == (2.0, 2.0, 1.0)
    losing = [{**folds[0], "is_value": -1.0}, {**folds[1], "is_value": 0.0}]
    s = walk_forward.walk_forward_efficiency(losing, "sharpe")
    assert s["is_mean"] == -0.5 and math.isnan(s["wfe"])
    s = walk_forward.walk_forward_efficiency(folds[2:], "sharpe")
    assert math.isnan(s["is_mean"]) and math.isnan(s["wfe"]) and s["folds_scored"] == 0


def test_the_best_row_ranks_an_unbounded_ratio_first_and_never_an_undefined_one():
    pf = METRIC_NAMES.index("profit_factor")
    matrix = np.full((4, len(METRIC_NAMES)), np.nan)
    matrix[:, METRIC_NAMES.index("n_trades")] = 10
    matrix[:, pf] = [2.5, np.nan, np.inf, 3.0]
    assert walk_forward.best_row(matrix, "profit_factor") == 2
    matrix[2, pf] = np.nan
    assert walk_forward.best_row(matrix, "profit_factor") == 3
    matrix[:, pf] = np.nan
    assert walk_forward.best_row(matrix, "profit_factor") == -1


def test_the_best_row_respects_min_trades_and_can_pick_the_best_neighbourhood():
    sharpe, trades = METRIC_NAMES.index("sharpe"), METRIC_NAMES.index("n_trades")
    grid = {"a": [1, 2, 3, 4, 5]}
    matrix = np.zeros((5, len(METRIC_NAMES)))
    matrix[:, sharpe] = [0.5, 3.0, 0.1, 1.2, 1.1]  # a lone peak at 1; a plateau at 3-4
    matrix[:, trades] = [40, 40, 40, 40, 5]
    assert walk_forward.best_row(matrix, "sharpe") == 1
    assert walk_forward.best_row(matrix, "sharpe", min_trades=41) == -1
    # robust: the worst of the row and its neighbours. 0: 0.5, 1-3: 0.1, 4: min(1.1, 1.2)
    assert walk_forward.best_row(matrix, "sharpe", pick="robust", grid=grid) == 4
    # min_trades 30: row 4 (5 trades) may not be ranked, a cliff worth the worst ranked
    # value (0.1); 3 falls to 0.1 and 0 (0.5) leads
    assert walk_forward.best_row(matrix, "sharpe", pick="robust", grid=grid, min_trades=30) == 0
    matrix[0, sharpe] = -1.0
    # cliff now -1.0: 0: -1, 1: -1, 2: min(0.1, 3.0, 1.2) = 0.1, 3: min(1.2, 0.1, -1) = -1
    assert walk_forward.best_row(matrix, "sharpe", pick="robust", grid=grid, min_trades=30) == 2
    with pytest.raises(ValueError, match="pick must be one of objective, robust"):
        walk_forward.best_row(matrix, "sharpe", pick="lucky")
    with pytest.raises(ValueError, match="needs the grid"):
        walk_forward.best_row(matrix, "sharpe", pick="robust")


def test_a_fold_runs_only_the_allowed_combinations_and_never_picks_a_skipped_one(monkeypatch):
    strat = get_strategy("sma_cross")
    grid = {"fast": [5, 40, 10], "slow": [30], "sl_pct": [2.0], "rr": [2.0]}
    params = sweep.params_range(grid, 0, 3)
    allowed = sweep.allowed(grid, strat.parameter_space().constraints)
    assert list(allowed) == [True, False, True]  # fast 40 >= slow 30
    seen = []
    original = type(strat).run_many

    def spy(self, ctx, param_list, costs):
        seen.extend(param_list)
        return original(self, ctx, param_list, costs)

    data = resample(synthetic_candles("BTC", days=60), "1h")
    windows = walk_forward.walk_forward_windows(len(data), n_splits=2)
    monkeypatch.setattr(type(strat), "run_many", spy)
    fold = walk_forward.run_fold(
        strat, data, None, params, Costs(), objective="n_trades", fold=windows[0],
        pick="robust", grid=grid, allowed=allowed,
    )  # fmt: skip
    assert seen == [params[0], params[2]]
    assert fold.grid_index in (0, 2) and fold.params == params[fold.grid_index]
