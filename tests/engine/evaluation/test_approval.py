"""Approval stage against the seed's rules and their order; the summary's fields and lines."""

import dataclasses

from backtestlab.engine.evaluation.approval import (
    ApprovalConfig,
    evaluate_strategy,
    strategy_summary,
    summary_lines,
)
from backtestlab.engine.evaluation.monte_carlo import VarianceProfile
from backtestlab.engine.evaluation.psychology import compute_psychology_score
from backtestlab.engine.evaluation.regimes import RegimeCoverage
from backtestlab.engine.evaluation.trades import StrategyStats

STATS = StrategyStats(
    n_trades=250, win_rate=0.6, avg_win=0.01, avg_loss=-0.008, expectancy_per_trade=0.0028,
    max_consec_losses=4, max_consec_wins=7, max_drawdown_pct=-0.12, years_covered=3.5,
)  # fmt: skip
VAR = VarianceProfile(500, 250, 0.5, -0.1, 1.2, -0.1, -0.2, 3, 5)
ALL = RegimeCoverage(True, True, True)


def stage(**kw):
    stats = dataclasses.replace(STATS, **{k: v for k, v in kw.items() if hasattr(STATS, k)})
    var = dataclasses.replace(VAR, **{k: v for k, v in kw.items() if hasattr(VAR, k)})
    psych = compute_psychology_score(stats, var)
    gates = {g: kw.get(g, True) for g in ("param_sensitivity_ok", "walk_forward_ok",
                                          "stress_test_ok", "checks_ok")}  # fmt: skip
    return evaluate_strategy(stats, var, psych, kw.get("regimes", ALL), **gates)


def test_stage_production_pilot_research():
    assert stage().stage == "PRODUCTION"
    r = stage(worst_max_loss_streak=7)
    assert (r.stage, r.reason.startswith("Suitable for small-size pilot")) == ("PILOT", True)
    assert stage(worst_max_dd=-0.4).stage == "RESEARCH"
    assert "exceeds research limit" in stage(worst_max_dd=-0.6).reason


def test_rules_apply_in_the_seeds_order():
    r = stage(n_trades=10, years_covered=1.0, walk_forward_ok=False)
    assert r.reason == "Insufficient sample size (10 < 200)"
    assert stage(years_covered=1.0, walk_forward_ok=False).reason.startswith(
        "Insufficient history (1.0y < 3.0y)"
    )
    r = stage(regimes=RegimeCoverage(True, False, True), stress_test_ok=False)
    assert r.reason == "Missing one or more market regimes (bull/bear/chop)"
    assert "Parameter sensitivity" in stage(param_sensitivity_ok=False).reason
    assert "Walk-forward" in stage(walk_forward_ok=False, stress_test_ok=False).reason
    assert "Stress tests" in stage(stress_test_ok=False).reason


def test_a_failed_lookahead_or_warmup_check_keeps_even_perfect_numbers_in_research():
    assert stage().stage == "PRODUCTION"
    r = stage(checks_ok=False)
    assert r.stage == "RESEARCH"
    assert r.reason.startswith("Look-ahead / warm-up check failed")
    rule = next(x for x in r.rules if x["name"] == "checks")
    assert (rule["passed"], rule["required"]) == (False, True)
    # No config switches it off.
    stats, var = STATS, VAR
    psych = compute_psychology_score(stats, var)
    relaxed = ApprovalConfig(
        require_walk_forward_ok=False, require_param_sensitivity_ok=False,
        require_stress_test_ok=False, require_bull_bear_chop=False,
    )  # fmt: skip
    r = evaluate_strategy(stats, var, psych, ALL, True, True, True, relaxed, checks_ok=False)
    assert r.stage == "RESEARCH"


def test_gates_can_be_switched_off_in_the_config():
    stats, var = STATS, VAR
    psych = compute_psychology_score(stats, var)
    cfg = ApprovalConfig(require_walk_forward_ok=False)
    r = evaluate_strategy(stats, var, psych, ALL, True, False, True, cfg, checks_ok=True)
    assert r.stage == "PRODUCTION"
    rule = next(x for x in r.rules if x["name"] == "walk_forward")
    assert rule["passed"] is False and rule["required"] is False


def test_summary_has_the_seeds_fields_and_lines():
    s = strategy_summary(stage())
    for key in ("stage", "reason", "win_rate", "avg_win", "avg_loss", "expectancy_per_trade",
                "backtest_max_dd", "mc_worst_max_dd", "mc_worst_loss_streak",
                "psychology_score", "psychology_components"):  # fmt: skip
        assert key in s
    lines = summary_lines(s)
    assert lines[0] == "=== Strategy Evaluation ==="
    assert lines[1].startswith("Stage: PRODUCTION – Meets production thresholds")
    assert "Win rate: 60.0%" in lines
    assert lines[-1].startswith("Psychology score:") and "/ 100" in lines[-1]
