"""Overfitting: the probability of backtest overfitting (CSCV) and the deflated Sharpe ratio."""

import numpy as np
import pytest

from backtestlab.engine.evaluation import overfitting
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs


def test_pbo_is_low_for_a_real_edge_and_high_for_noise():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, (800, 40))
    p_noise = overfitting.probability_of_backtest_overfitting(noise).pbo
    edge = noise.copy()
    edge[:, 3] += 0.004
    p_edge = overfitting.probability_of_backtest_overfitting(edge).pbo
    assert p_edge < 0.05 < 0.2 < p_noise < 0.8


def test_deflated_sharpe_penalises_many_trials():
    rng = np.random.default_rng(1)
    r = rng.normal(0.0005, 0.01, 1000)
    few = overfitting.deflated_sharpe_ratio(r, rng.normal(0, 0.01, 2))
    many = overfitting.deflated_sharpe_ratio(r, rng.normal(0, 0.03, 1000))
    assert 0 <= many.dsr < few.dsr <= 1
    assert many.n_trials == 1000 and many.expected_max_sharpe > 0


def test_returns_matrix_samples_long_data_into_coarser_periods(hourly_btc):
    strategy = get_strategy("sma_cross")
    ctx = strategy.prepare(hourly_btc)
    params = [{"fast": 5, "slow": 30}, {"fast": 10, "slow": 60}]
    full, per = overfitting.returns_matrix(strategy, ctx, params, Costs())
    assert full.shape == (len(hourly_btc) - 1, 2) and per == 1.0
    coarse, per = overfitting.returns_matrix(strategy, ctx, params, Costs(), max_periods=100)
    assert coarse.shape == (100, 2) and per == pytest.approx((len(hourly_btc) - 1) / 100)
    assert np.prod(1 + coarse[:, 0]) == pytest.approx(np.prod(1 + full[:, 0]))
