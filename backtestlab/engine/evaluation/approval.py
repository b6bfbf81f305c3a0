"""Strategy approval stages (seed 002 ``ApprovalConfig``, ``evaluate_strategy``).

The seed hard-codes ``param_sensitivity_ok``, ``walk_forward_ok`` and ``stress_test_ok`` to
True; here each comes from a real test with thresholds in the config (fields after the
seed's own):

==========================  ======================================================================
param_sensitivity_ok        neighbourhood drop (:mod:`.sensitivity`) <= ``max_neighbour_drop``
walk_forward_ok             WFE >= ``min_walk_forward_efficiency`` and the share of folds with a
                            positive OOS objective >= ``min_oos_positive_share``
stress_test_ok              every stress scenario keeps >= ``stress_min_fraction`` of the base
                            objective, all three together >= ``stress_min_fraction_combined``
regimes                     a regime counts when >= ``min_regime_share`` of the bars in the
                            trades' span carry its label
==========================  ======================================================================

:func:`evaluate_strategy` applies the seed's rules in the seed's order and returns at the
first that decides; :func:`approval_rules` lists every rule's value, threshold and verdict
for display (the stage still comes from :func:`evaluate_strategy`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .monte_carlo import VarianceProfile
from .psychology import REACHABLE_RANGE, PsychologyScore
from .regimes import RegimeCoverage
from .trades import StrategyStats


@dataclass(frozen=True)
class ApprovalConfig:
    min_trades: int = 200
    min_years: float = 3.0
    require_bull_bear_chop: bool = True

    max_worst_dd_research: float = 0.50
    max_worst_dd_pilot: float = 0.35
    max_worst_dd_prod: float = 0.25

    max_loss_streak_pilot: int = 8
    max_loss_streak_prod: int = 6

    min_psych_score_pilot: float = 40.0
    min_psych_score_prod: float = 60.0

    require_param_sensitivity_ok: bool = True
    require_walk_forward_ok: bool = True
    require_stress_test_ok: bool = True

    # Thresholds of the computed gates (not in the seed, which hard-codes the gates).
    max_neighbour_drop: float = 0.5
    min_walk_forward_efficiency: float = 0.5
    min_oos_positive_share: float = 0.5
    stress_min_fraction: float = 0.5
    stress_min_fraction_combined: float = 0.25
    min_regime_share: float = 0.05
    # The evaluation's own Monte Carlo (the seed runs 500 simulations).
    mc_sims: int = 500
    mc_seed: int = 7

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_mapping(cls, values) -> ApprovalConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(values).items() if k in names})


@dataclass(frozen=True)
class ApprovalResult:
    stage: str
    reason: str
    stats: StrategyStats
    variance: VarianceProfile
    psych: PsychologyScore
    rules: tuple = field(default=())


def evaluate_strategy(
    stats: StrategyStats,
    variance: VarianceProfile,
    psych: PsychologyScore,
    regimes: RegimeCoverage,
    param_sensitivity_ok: bool,
    walk_forward_ok: bool,
    stress_test_ok: bool,
    cfg: ApprovalConfig | None = None,
    *,
    checks_ok: bool,
) -> ApprovalResult:
    """The seed's rules, in its order; the first that decides gives stage and reason.

    Before them, ``checks_ok``: the strategy's look-ahead and warm-up checks
    (:mod:`backtestlab.engine.checks`) passed.  A strategy that reads the future or needs more
    history than it declares stays in RESEARCH whatever its numbers; no config turns that off.
    """
    cfg = cfg or ApprovalConfig()
    rules = tuple(
        approval_rules(
            stats, variance, psych, regimes, param_sensitivity_ok, walk_forward_ok,
            stress_test_ok, cfg, checks_ok=checks_ok,
        )
    )  # fmt: skip

    def result(stage: str, reason: str) -> ApprovalResult:
        return ApprovalResult(stage, reason, stats, variance, psych, rules)

    if not checks_ok:
        return result(
            "RESEARCH", "Look-ahead / warm-up check failed: the backtest cannot be trusted"
        )

    if stats.n_trades < cfg.min_trades:
        return result("RESEARCH", f"Insufficient sample size ({stats.n_trades} < {cfg.min_trades})")
    if stats.years_covered < cfg.min_years:
        return result(
            "RESEARCH",
            f"Insufficient history ({stats.years_covered:.1f}y < {cfg.min_years:.1f}y)",
        )
    if cfg.require_bull_bear_chop and not (regimes.bull and regimes.bear and regimes.chop):
        return result("RESEARCH", "Missing one or more market regimes (bull/bear/chop)")
    if cfg.require_param_sensitivity_ok and not param_sensitivity_ok:
        return result("RESEARCH", "Parameter sensitivity / heatmap indicates overfitting")
    if cfg.require_walk_forward_ok and not walk_forward_ok:
        return result("RESEARCH", "Walk-forward optimization failed (out-of-sample too weak)")
    if cfg.require_stress_test_ok and not stress_test_ok:
        return result("RESEARCH", "Stress tests (fees, slippage, delays) too fragile")

    worst_dd = abs(variance.worst_max_dd)
    worst_streak = variance.worst_max_loss_streak
    if worst_dd > cfg.max_worst_dd_research:
        return result(
            "RESEARCH",
            f"Worst Monte Carlo DD {worst_dd:.1%} exceeds research limit "
            f"{cfg.max_worst_dd_research:.1%}",
        )
    if (
        worst_dd <= cfg.max_worst_dd_prod
        and worst_streak <= cfg.max_loss_streak_prod
        and psych.score >= cfg.min_psych_score_prod
    ):
        return result("PRODUCTION", "Meets production thresholds (DD, streak, psychology score)")
    if (
        worst_dd <= cfg.max_worst_dd_pilot
        and worst_streak <= cfg.max_loss_streak_pilot
        and psych.score >= cfg.min_psych_score_pilot
    ):
        return result(
            "PILOT", "Suitable for small-size pilot (fails at least one production threshold)"
        )
    return result("RESEARCH", "Fails pilot thresholds (DD, streak or psychology)")


def _rule(name, label, value, op, threshold, passed, required=True) -> dict:
    return {
        "name": name, "label": label, "value": value, "op": op, "threshold": threshold,
        "passed": bool(passed), "required": bool(required),
    }  # fmt: skip


def approval_rules(
    stats, variance, psych, regimes, param_sensitivity_ok, walk_forward_ok, stress_test_ok,
    cfg: ApprovalConfig, *, checks_ok: bool = True,
) -> list[dict]:  # fmt: skip
    """Every rule of :func:`evaluate_strategy` with its value, threshold and verdict."""
    worst_dd = abs(variance.worst_max_dd)
    streak = variance.worst_max_loss_streak
    regime_str = "/".join(n for n in ("bull", "bear", "chop") if getattr(regimes, n)) or "none"
    return [
        _rule("checks", "Look-ahead & warm-up check", bool(checks_ok), "=", True, checks_ok),
        _rule("min_trades", "Trades", stats.n_trades, ">=", cfg.min_trades,
              stats.n_trades >= cfg.min_trades),
        _rule("min_years", "Years covered", round(stats.years_covered, 3), ">=", cfg.min_years,
              stats.years_covered >= cfg.min_years),
        _rule("regimes", "Regimes covered", regime_str, "=", "bull/bear/chop",
              regimes.bull and regimes.bear and regimes.chop, cfg.require_bull_bear_chop),
        _rule("param_sensitivity", "Parameter sensitivity", bool(param_sensitivity_ok), "=",
              True, param_sensitivity_ok, cfg.require_param_sensitivity_ok),
        _rule("walk_forward", "Walk-forward", bool(walk_forward_ok), "=", True,
              walk_forward_ok, cfg.require_walk_forward_ok),
        _rule("stress_test", "Stress test", bool(stress_test_ok), "=", True, stress_test_ok,
              cfg.require_stress_test_ok),
        _rule("worst_dd_research", "MC worst DD (research)", worst_dd, "<=",
              cfg.max_worst_dd_research, worst_dd <= cfg.max_worst_dd_research),
        _rule("worst_dd_prod", "MC worst DD (production)", worst_dd, "<=",
              cfg.max_worst_dd_prod, worst_dd <= cfg.max_worst_dd_prod),
        _rule("loss_streak_prod", "MC worst loss streak (production)", streak, "<=",
              cfg.max_loss_streak_prod, streak <= cfg.max_loss_streak_prod),
        _rule("psych_prod", "Psychology score (production)", round(psych.score, 3), ">=",
              cfg.min_psych_score_prod, psych.score >= cfg.min_psych_score_prod),
        _rule("worst_dd_pilot", "MC worst DD (pilot)", worst_dd, "<=", cfg.max_worst_dd_pilot,
              worst_dd <= cfg.max_worst_dd_pilot),
        _rule("loss_streak_pilot", "MC worst loss streak (pilot)", streak, "<=",
              cfg.max_loss_streak_pilot, streak <= cfg.max_loss_streak_pilot),
        _rule("psych_pilot", "Psychology score (pilot)", round(psych.score, 3), ">=",
              cfg.min_psych_score_pilot, psych.score >= cfg.min_psych_score_pilot),
    ]  # fmt: skip


def strategy_summary(approval: ApprovalResult) -> dict:
    """The seed's ``render_strategy_summary`` dict (no printing; see :func:`summary_lines`)."""
    s, v, p = approval.stats, approval.variance, approval.psych
    return {
        "stage": approval.stage,
        "reason": approval.reason,
        "win_rate": s.win_rate,
        "avg_win": s.avg_win,
        "avg_loss": s.avg_loss,
        "expectancy_per_trade": s.expectancy_per_trade,
        "backtest_max_dd": s.max_drawdown_pct,
        "mc_worst_max_dd": v.worst_max_dd,
        "mc_worst_loss_streak": v.worst_max_loss_streak,
        "psychology_score": p.score,
        "psychology_components": p.components,
        "psychology_reachable_range": list(REACHABLE_RANGE),
        "n_trades": s.n_trades,
        "years_covered": s.years_covered,
    }


def summary_lines(summary: dict) -> list[str]:
    """The seed's human-readable form, from a :func:`strategy_summary` dict."""
    lo, hi = summary.get("psychology_reachable_range", REACHABLE_RANGE)
    return [
        "=== Strategy Evaluation ===",
        f"Stage: {summary['stage']} – {summary['reason']}",
        f"Trades: {summary['n_trades']} over ~{summary['years_covered']:.1f} years",
        f"Win rate: {summary['win_rate']:.1%}",
        f"Avg win: {summary['avg_win']:.2%}, Avg loss: {summary['avg_loss']:.2%}",
        f"Expectancy/trade: {summary['expectancy_per_trade']:.3%}",
        f"Max DD (equity curve): {summary['backtest_max_dd']:.1%}",
        f"MC worst DD: {summary['mc_worst_max_dd']:.1%}, "
        f"worst loss streak: {summary['mc_worst_loss_streak']}",
        f"Psychology score: {summary['psychology_score']:.1f} / 100 (reachable {lo:g}–{hi:g})",
    ]
