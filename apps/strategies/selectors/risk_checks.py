"""Risk in backtests: a run's trades checked by the RiskManager with its strategy's RiskConfig.

Each trade, in time order, is a CandidateTrade against the run's positions still open at its
time; vetoed trades are skipped, counted by reason and listed. Only strategies that estimate a
trade's maximum loss (options_selector: ``max_loss_pct`` of equity) can be checked; the others
answer ``applicable: false`` with the reason (their stops bound price moves, not equity loss).

The run's stored metrics stay those of the unfiltered sweep (the sweep kernel does not consult
risk); this is the run-detail view of what the limits would have removed.
"""

from __future__ import annotations

from apps.optimization.gateway import run_backtest
from apps.optimization.models import OptimizationRun
from apps.strategies.selectors.configs import risk_config_as_dict, risk_config_for
from backtestlab.engine.risk import RiskTrade, risk_filter, risk_summary

MAX_LISTED = 200


def run_risk_check(run: OptimizationRun) -> dict:
    strategy_key = run.job.strategy
    config = risk_config_for(strategy_key)
    base = {"run": run.id, "strategy": strategy_key, "risk_config": risk_config_as_dict(config)}
    strategy, ctx, costs, _ = run_backtest(run)
    if not hasattr(strategy, "trade_results"):
        return {**base, "applicable": False,
                "reason": f"{strategy_key} does not estimate a trade's maximum loss as a "
                          "fraction of equity; only options_selector does"}  # fmt: skip
    trades = [
        RiskTrade(t.timestamp, t.settled_at, t.underlying, t.estimated_max_loss_pct, t.pnl_frac)
        for t in strategy.trade_results(ctx, run.params, costs)
    ]
    verdicts = risk_filter(trades, config.as_engine(), strategy_key)
    vetoed = [
        {"opened_at": v.trade.opened_at, "underlying": v.trade.underlying, "kind": v.kind,
         "reason": v.reason, "estimated_max_loss_pct": v.trade.estimated_max_loss_pct,
         "pnl_pct": v.trade.pnl_frac}
        for v in verdicts if not v.allowed
    ]  # fmt: skip
    return {
        **base,
        "applicable": True,
        **risk_summary(verdicts),
        "vetoed_trades": vetoed[:MAX_LISTED],
    }
