"""A plain-Python reference for the golden runs, written from the documents, not the kernels.

The execution model is the one the module docstring of ``backtestlab/engine/simulate.py``
states (one all-in position at a time; a position opened with equity ``E`` holds
``qty = E / (1 + c) / entry_fill`` units after the entry commission; the mark at a close is
``E / (1 + c) + side * qty * (close - entry_fill)``; the equity after the exit is that base
plus ``side * qty * (exit_fill - entry_fill)`` less ``c * qty * exit_fill``; a position
still open at the last close is only marked there: no exit commission, not a closed trade,
and the metrics' trade statistics leave it out).  The metric
formulas are those of ``backtestlab/engine/metrics.py``'s docstring.  Nothing here calls
the engine: the tests build the trade list by hand (every level spelled out in comments),
and this module only does the bookkeeping a reviewer would otherwise do on paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from backtestlab.engine.metrics import METRIC_NAMES

HOUR = 3600


@dataclass(frozen=True)
class RefTrade:
    """One hand-derived trade.

    ``exit_at_open`` is True when the position was closed at the exit bar's open (a signal
    exit): the exit bar then does not count as a bar in the position.  Reason ``"end"`` is a
    position still open at the last bar: ``exit_idx`` is that bar, ``exit_fill`` its close
    (the mark), and no exit commission is paid.
    """

    entry_idx: int
    exit_idx: int
    side: int
    entry_fill: float
    exit_fill: float
    reason: str
    exit_at_open: bool = False


def all_in_curve(
    close, trades: list[RefTrade], comm: float, e0: float
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Equity at each close, bars in a position, and each trade's pnl in percent (a last
    ``"end"`` trade's from its mark: the caller leaves it out of the closed trades).

    Unhedged, no cash flows; trades are sorted and do not overlap.
    """
    n = len(close)
    equity = [e0] * n
    in_pos = [False] * n
    pnl = []
    cash = e0
    prev_exit = 0
    for t in trades:
        for i in range(prev_exit, t.entry_idx):
            equity[i] = cash
        base = cash / (1 + comm)
        qty = base / t.entry_fill
        for i in range(t.entry_idx, t.exit_idx):
            equity[i] = base + t.side * qty * (close[i] - t.entry_fill)
            in_pos[i] = True
        fee = 0.0 if t.reason == "end" else comm * qty * t.exit_fill  # open: only marked
        after = base + t.side * qty * (t.exit_fill - t.entry_fill) - fee
        in_pos[t.exit_idx] = not t.exit_at_open
        pnl.append((after / cash - 1) * 100)
        cash = after
        equity[t.exit_idx] = cash
        prev_exit = t.exit_idx
    for i in range(prev_exit, n):
        equity[i] = cash
    return np.array(equity), np.array(in_pos), pnl


def max_drawdown_pct(equity) -> float:
    """The deepest fall from a running peak, in percent (<= 0), by a plain loop."""
    peak = equity[0]
    worst = 0.0
    for e in equity:
        peak = max(peak, e)
        worst = min(worst, e / peak - 1)
    return worst * 100


def longest_run(flags) -> int:
    best = run = 0
    for f in flags:
        run = run + 1 if f else 0
        best = max(best, run)
    return best


def metrics(
    equity,
    e0: float,
    pnl_pct,
    in_pos,
    durations_h,
    bars_per_year: float,
) -> dict[str, float]:
    """The metrics a golden test checks, from the reference curve and trade list.

    Every formula is the docstring's; ``nan`` where it says so (no trade, no loss...).
    """
    pnl = [float(p) for p in pnl_pct]
    wins = [p for p in pnl if p > 0]
    losses = [p for p in pnl if p < 0]
    n = len(pnl)
    r = [equity[i] / equity[i - 1] - 1 for i in range(1, len(equity))]
    mean = sum(r) / len(r)
    var = sum((x - mean) ** 2 for x in r) / (len(r) - 1)
    sd = math.sqrt(var)
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    nan = float("nan")
    return {
        "total_return_pct": (equity[-1] / e0 - 1) * 100,
        "n_trades": float(n),
        "win_rate": 100 * len(wins) / n if n else nan,
        "max_drawdown_pct": max_drawdown_pct(equity),
        "profit_factor": sum(wins) / -sum(losses) if losses else nan,
        "expectancy_pct": sum(pnl) / n if n else nan,
        "avg_win_pct": sum(wins) / len(wins) if wins else nan,
        "avg_loss_pct": sum(losses) / len(losses) if losses else nan,
        "max_consec_wins": float(longest_run(p > 0 for p in pnl)),
        "max_consec_losses": float(longest_run(p < 0 for p in pnl)),
        "avg_trade_duration_h": sum(durations_h) / n if n else nan,
        "exposure_pct": 100 * sum(bool(x) for x in in_pos) / len(in_pos),
        "sharpe": mean / sd * math.sqrt(bars_per_year) if sd > 1e-14 else nan,
        "sortino": mean / down * math.sqrt(bars_per_year) if down > 0 else nan,
    }


def assert_metrics(row, expected: dict[str, float], *, rtol: float = 1e-9) -> None:
    """``row`` (a metrics vector in ``METRIC_NAMES`` order) equals ``expected`` where given."""
    for name, want in expected.items():
        got = row[METRIC_NAMES.index(name)]
        if math.isnan(want):
            assert math.isnan(got), f"{name}: expected nan, got {got}"
        else:
            assert np.isclose(got, want, rtol=rtol, atol=1e-12), f"{name}: {got} != {want}"
