"""Psychology score against the seed's formula and its reachable range."""

import dataclasses

import pytest

from backtestlab.engine.evaluation.monte_carlo import VarianceProfile
from backtestlab.engine.evaluation.psychology import REACHABLE_RANGE, compute_psychology_score
from backtestlab.engine.evaluation.trades import StrategyStats

STATS = StrategyStats(
    n_trades=250, win_rate=0.6, avg_win=0.01, avg_loss=-0.008, expectancy_per_trade=0.0028,
    max_consec_losses=4, max_consec_wins=7, max_drawdown_pct=-0.12, years_covered=3.5,
)  # fmt: skip
VAR = VarianceProfile(500, 250, 0.5, -0.1, 1.2, -0.1, -0.2, 3, 5)


def test_psychology_score_golden():
    p = compute_psychology_score(STATS, VAR)
    # win 0.5, expectancy 2.8 -> 1.5, streak 0.5, dd 0.2/0.3
    assert p.components == pytest.approx(
        {
            "win_rate_score": 0.5,
            "expectancy_score": 1.5,
            "streak_penalty": 0.5,
            "dd_penalty": 0.2 / 0.3,
        }  # fmt: skip
    )
    raw = 0.4 * 0.5 + 0.3 * 1.5 - 0.2 * 0.5 - 0.1 * (0.2 / 0.3)
    assert p.score == pytest.approx((raw + 2) * 25)


def test_psychology_score_reaches_only_35_to_71_25():
    best = compute_psychology_score(
        dataclasses.replace(STATS, win_rate=1.0, expectancy_per_trade=1.0),
        dataclasses.replace(VAR, worst_max_loss_streak=0, worst_max_dd=0.0),
    )
    worst = compute_psychology_score(
        dataclasses.replace(STATS, win_rate=0.0, expectancy_per_trade=-1.0),
        dataclasses.replace(VAR, worst_max_loss_streak=100, worst_max_dd=-1.0),
    )
    assert (worst.score, best.score) == pytest.approx(REACHABLE_RANGE)
