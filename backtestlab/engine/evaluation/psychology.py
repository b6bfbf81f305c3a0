"""The seed's psychology-friendliness score.

``score = 25 * (2 + max(raw, -2))`` with ``raw = 0.4 * win_rate_score + 0.3 *
expectancy_score - 0.2 * streak_penalty - 0.1 * dd_penalty`` and the components clipped as in
the seed.  The seed calls it 0-100, but with its own weights and clips ``raw`` lies in
``[-0.6, 0.85]``, so the score can only reach :data:`REACHABLE_RANGE` = 35..71.25.  The
formula is kept as it is because the approval thresholds (40 for pilot, 60 for production)
are set on it; pages show the reachable range next to the score.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .monte_carlo import VarianceProfile
from .trades import StrategyStats

REACHABLE_RANGE = (35.0, 71.25)


@dataclass(frozen=True)
class PsychologyScore:
    score: float
    components: dict

    def as_dict(self) -> dict:
        return {**asdict(self), "reachable_range": list(REACHABLE_RANGE)}


def compute_psychology_score(
    stats: StrategyStats,
    variance: VarianceProfile,
    target_expectancy_per_trade: float = 0.001,
) -> PsychologyScore:
    """Seed 002's formula (win rate 40 %->0, 80 %->1; expectancy / target clipped 0..1.5;
    a 10-loss worst streak and a 30 % worst drawdown each count as a penalty of 1, capped 2)."""
    win_rate_score = min(max((stats.win_rate - 0.4) / 0.4, 0.0), 1.0)
    exp_score = min(max(stats.expectancy_per_trade / target_expectancy_per_trade, 0.0), 1.5)
    streak_penalty = min(variance.worst_max_loss_streak / 10.0, 2.0)
    dd_penalty = min(abs(variance.worst_max_dd) / 0.3, 2.0)
    raw = 0.4 * win_rate_score + 0.3 * exp_score - 0.2 * streak_penalty - 0.1 * dd_penalty
    score = (max(raw, -2.0) + 2.0) * 25.0
    return PsychologyScore(
        score=score,
        components={
            "win_rate_score": win_rate_score,
            "expectancy_score": exp_score,
            "streak_penalty": streak_penalty,
            "dd_penalty": dd_penalty,
        },
    )
