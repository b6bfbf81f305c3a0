"""Monte Carlo: the seed's VarianceProfile, determinism, properties, edge cases."""

import math

import numpy as np
import pytest

from backtestlab.engine.evaluation import monte_carlo as mc
from backtestlab.engine.evaluation.trades import NoTradesError

RETURNS = np.array([0.02, -0.01, -0.01, 0.03, 0.0, -0.02, 0.01, 0.01, 0.01, -0.005])


def seed_simulate_equity(returns):
    """The seed's _simulate_equity, verbatim in substance."""
    equity = peak = 1.0
    max_dd = 0.0
    streak = cur = 0
    for r in returns:
        equity *= 1 + r
        peak = max(peak, equity)
        max_dd = min(max_dd, (equity - peak) / peak)
        cur = cur + 1 if r < 0 else 0
        streak = max(streak, cur)
    return equity, max_dd, streak


def seed_percentile(data, p):
    data = sorted(data)
    k = (len(data) - 1) * p
    f, c = math.floor(k), math.ceil(k)
    if f == c:
        return data[int(k)]
    return data[f] * (c - k) + data[c] * (k - f)


@pytest.mark.parametrize("mode", mc.MODES)
def test_profile_follows_the_seed_on_the_same_paths(mode):
    res = mc.run_monte_carlo(RETURNS, sims=300, trades_per_sim=8, bootstrap=mode == "bootstrap",
                             seed=42)  # fmt: skip
    rng = mc.block_generator(42, 0)
    if mode == "bootstrap":
        paths = RETURNS[rng.integers(0, RETURNS.size, size=(300, 8))]
    else:
        idx = rng.permuted(np.broadcast_to(np.arange(RETURNS.size), (300, RETURNS.size)), axis=1)
        paths = RETURNS[idx[:, :8]]
    outs = [seed_simulate_equity(p) for p in paths]
    finals = [o[0] for o in outs]
    dds = [o[1] for o in outs]
    streaks = [o[2] for o in outs]
    v = res.profile
    assert v.sims == 300 and v.trades_per_sim == 8
    assert v.median_final_return == pytest.approx(seed_percentile(finals, 0.5) - 1, abs=1e-12)
    assert v.worst_final_return == pytest.approx(min(finals) - 1, abs=1e-12)
    assert v.best_final_return == pytest.approx(max(finals) - 1, abs=1e-12)
    assert v.median_max_dd == pytest.approx(seed_percentile(dds, 0.5), abs=1e-12)
    assert v.worst_max_dd == pytest.approx(min(dds), abs=1e-12)
    assert v.median_max_loss_streak == int(round(seed_percentile(streaks, 0.5)))
    assert v.worst_max_loss_streak == max(streaks)


def test_golden_numbers_with_a_fixed_seed():
    v = mc.run_monte_carlo(RETURNS, sims=2000, trades_per_sim=50, seed=7).profile
    assert v.median_final_return == pytest.approx(0.18564681086972556, rel=1e-8)
    assert v.worst_final_return == pytest.approx(-0.15112068491748898, rel=1e-8)
    assert v.worst_max_dd == pytest.approx(-0.19984194450155796, rel=1e-8)
    assert (v.median_max_loss_streak, v.worst_max_loss_streak) == (4, 11)


def test_same_seed_same_numbers_and_chunking_does_not_matter():
    a = mc.run_monte_carlo(RETURNS, sims=2500, trades_per_sim=30, seed=3)
    b = mc.run_monte_carlo(RETURNS, sims=2500, trades_per_sim=30, seed=3)
    assert a.profile == b.profile and a.bands == b.bands
    parts = [mc.simulate_paths(RETURNS, sims=2500, trades_per_sim=30, seed=3, start=lo, stop=hi)
             for lo, hi in ((0, 1000), (1000, 2000), (2000, 2500))]  # fmt: skip
    finals = np.concatenate([p[0] for p in parts])
    assert np.array_equal(finals, a.final_returns)
    c = mc.run_monte_carlo(RETURNS, sims=2500, trades_per_sim=30, seed=4)
    assert c.profile != a.profile


def test_shuffling_leaves_the_final_return_unchanged():
    res = mc.run_monte_carlo(RETURNS, sims=500, bootstrap=False, seed=1)
    expected = np.prod(1 + RETURNS) - 1
    assert np.allclose(res.final_returns, expected, rtol=0, atol=1e-12)
    assert res.profile.worst_final_return == pytest.approx(expected)


@pytest.mark.parametrize("mode", mc.MODES)
def test_worst_drawdown_is_at_most_the_median(mode):
    v = mc.run_monte_carlo(RETURNS, sims=1000, bootstrap=mode == "bootstrap", seed=5).profile
    assert v.worst_max_dd <= v.median_max_dd <= 0
    assert v.worst_max_loss_streak >= v.median_max_loss_streak
    assert v.worst_final_return <= v.median_final_return <= v.best_final_return


@pytest.mark.parametrize("mode", mc.MODES)
def test_more_sims_never_narrow_the_worst_case(mode):
    prev = None
    for sims in (10, 100, 999, 1000, 1001, 3000):
        v = mc.run_monte_carlo(RETURNS, sims=sims, trades_per_sim=9,
                               bootstrap=mode == "bootstrap", seed=11).profile  # fmt: skip
        if prev:
            assert v.worst_max_dd <= prev.worst_max_dd
            assert v.worst_final_return <= prev.worst_final_return
            assert v.best_final_return >= prev.best_final_return
            assert v.worst_max_loss_streak >= prev.worst_max_loss_streak
        prev = v


def test_bands_are_ordered_and_start_at_one():
    res = mc.run_monte_carlo(RETURNS, sims=1000, trades_per_sim=200, seed=2)
    assert res.steps[0] == 0 and res.steps[-1] == 200 and len(res.steps) <= mc.MAX_CHECKPOINTS
    bands = [np.array(res.bands[p]) for p in mc.BAND_PERCENTILES]
    assert all(b[0] == 1.0 for b in bands)
    for lo, hi in zip(bands, bands[1:], strict=False):
        assert np.all(lo <= hi + 1e-15)
    assert res.bands[50][-1] == pytest.approx(1 + res.profile.median_final_return)
    ci = res.intervals["final_return"]
    assert ci["low"] <= res.profile.median_final_return <= ci["high"]


def test_edge_cases():
    with pytest.raises(NoTradesError):
        mc.run_monte_carlo([], sims=10, seed=1)
    one = mc.run_monte_carlo([0.01], sims=50, trades_per_sim=5, seed=1).profile
    assert one.worst_final_return == pytest.approx(1.01**5 - 1)
    assert one.worst_max_dd == 0 and one.worst_max_loss_streak == 0
    losses = mc.run_monte_carlo([-0.01, -0.02], sims=50, trades_per_sim=4, seed=1).profile
    assert losses.worst_max_loss_streak == 4 and losses.best_final_return < 0
    with pytest.raises(ValueError, match="trades_per_sim must be at most"):
        mc.run_monte_carlo(RETURNS, sims=5, trades_per_sim=11, bootstrap=False, seed=1)
    with pytest.raises(ValueError, match="sims"):
        mc.run_monte_carlo(RETURNS, sims=0, seed=1)
