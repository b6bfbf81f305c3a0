"""One run in detail: equity, drawdown and trades, recomputed by the engine."""

from __future__ import annotations

import numpy as np

from apps.optimization.gateway import result_metrics, run_backtest
from apps.optimization.models import OptimizationRun

MIN_CURVE_POINTS = 100  # what a client may ask for (the API refuses fewer)
MAX_CURVE_POINTS = 2000


def downsample_indices(equity: np.ndarray, drawdown: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` indices keeping, per bucket, the equity peak and the deepest
    drawdown, plus the first and last bar: the curve's shape and its max drawdown survive."""
    n = len(equity)
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, (max_points - 2) // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    picks = [0, n - 1]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b > a:
            picks.append(a + int(np.argmax(equity[a:b])))
            picks.append(a + int(np.argmin(drawdown[a:b])))
    return np.unique(np.array(picks, dtype=np.int64))


def run_backtest_detail(run: OptimizationRun, *, max_points: int = MAX_CURVE_POINTS) -> dict:
    """Equity curve, drawdown, trades and metrics of a run, recomputed on demand through
    ``strategy.run`` from (strategy, dataset, the job's date range and costs, params): runs
    are deterministic, so only their metrics are stored. Curves are downsampled to
    ``max_points``; trades are complete (the closed ones; a position still open at the last
    bar is ``open_position``: marked at that bar's close, its P&L unrealised, or None)."""
    job = run.job
    dataset = run.dataset
    *_, result = run_backtest(run)
    equity = np.asarray(result.equity, dtype=np.float64)
    peak = np.maximum.accumulate(equity) if len(equity) else equity
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = np.where(peak > 0, (equity / peak - 1.0) * 100.0, 0.0)
    idx = downsample_indices(equity, drawdown, max_points)
    trades = _trade_rows(result.trades)
    # A position still open at the last bar: marked at its close (unrealised), not a trade.
    held = _trade_rows(result.open_trade)
    open_position = None
    if held:
        row = held[0]
        open_position = {
            "entry_time": row["entry_time"],
            "mark_time": row["exit_time"],
            "entry_price": row["entry_price"],
            "mark_price": row["exit_price"],
            "side": row["side"],
            "unrealised_pnl_pct": row["pnl_pct"],
        }
    metrics = result_metrics(result)
    return {
        "run": run.id,
        "job": job.id,
        "strategy": job.strategy,
        "dataset": {
            "id": dataset.id,
            "name": dataset.name,
            "symbol": dataset.symbol,
            "timeframe": dataset.timeframe,
        },
        "date_from": job.date_from,
        "date_to": job.date_to,
        "costs": job.costs,
        "params": run.params,
        "metrics": metrics,
        "initial_equity": float(result.initial_equity),
        "bars": int(len(equity)),
        "curve": {
            "time": [int(v) for v in np.asarray(result.ts)[idx]],
            "equity": [float(v) for v in equity[idx]],
            "drawdown_pct": [float(v) for v in drawdown[idx]],
        },
        "trades": trades,
        "open_position": open_position,
    }


def _trade_rows(t) -> list[dict]:
    return [
        {
            "entry_time": int(t.entry_ts[i]),
            "exit_time": int(t.exit_ts[i]),
            "entry_price": float(t.entry_price[i]),
            "exit_price": float(t.exit_price[i]),
            "side": "long" if int(t.side[i]) > 0 else "short",
            "pnl_pct": float(t.pnl_pct[i]),
            "reason": str(t.reason[i]),
        }
        for i in range(len(t))
    ]
