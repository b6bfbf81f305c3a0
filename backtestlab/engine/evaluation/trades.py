"""Trade records and their statistics (seed 002: ``TradeResult``, ``StrategyStats``).

Every backtest yields :class:`TradeResult` records through :func:`trades_from_backtest`,
whatever the strategy: the simulator's ``Trades`` already hold each closed position's PnL in
percent of the equity just before entry, so a record's ``pnl_frac`` (the seed's ``pnl_pct``, a
*fraction* of equity) is ``Trades.pnl_pct / 100`` and compounding the fractions gives the final
equity exactly when the run ends flat.  A position still open at the end
(``BacktestResult.open_trade``) is only marked, not closed: it is no record here, so statistics
and Monte Carlo resampling see closed trades only.

One deliberate change to the seed's formula: its expectancy weights the average loss by
``1 - win_rate``, which counts break-even trades as losses.  Here it is weighted by the loss
rate (share of trades with ``pnl < 0``), so the expectancy equals the mean PnL; the two agree
whenever no trade is exactly zero.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


class NoTradesError(ValueError):
    """The evaluation needs at least one closed trade."""

    def __init__(self, message: str = "No trades provided: the backtest closed no trade"):
        super().__init__(message)


@dataclass(frozen=True)
class TradeResult:
    """Generic trade or chain result (seed 002).

    ``timestamp`` is the exit (settlement) time, UTC; ``pnl_frac`` a fraction of equity
    (+0.01 = +1 %).
    """

    timestamp: dt.datetime
    pnl_frac: float
    is_win: bool
    underlying: str
    chain_id: str | None = None


@dataclass(frozen=True)
class StrategyStats:
    n_trades: int
    win_rate: float
    avg_win: float
    avg_loss: float
    expectancy_per_trade: float
    max_consec_losses: int
    max_consec_wins: int
    max_drawdown_pct: float  # a fraction, <= 0 (the seed's name)
    years_covered: float

    def as_dict(self) -> dict:
        return asdict(self)


def _utc(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ts), tz=dt.UTC)


def trades_from_backtest(result, *, underlying: str) -> list[TradeResult]:
    """The closed trades of a ``BacktestResult`` as :class:`TradeResult` records (not the
    position still open at the end, which has no exit).

    ``timestamp`` = exit time; ``chain_id`` = ``"<underlying>-<entry time>"`` (one position
    is one chain here; the options selector's own records carry its chain ids).
    """
    t = result.trades
    out = []
    for k in range(len(t)):
        pnl = float(t.pnl_pct[k]) / 100.0
        opened = _utc(t.entry_ts[k])
        out.append(
            TradeResult(
                timestamp=_utc(t.exit_ts[k]),
                pnl_frac=pnl,
                is_win=pnl > 0,
                underlying=underlying,
                chain_id=f"{underlying}-{opened:%Y%m%dT%H%M}",
            )
        )
    return out


def pnl_fractions(trades: Sequence[TradeResult]) -> np.ndarray:
    return np.fromiter((t.pnl_frac for t in trades), dtype=np.float64, count=len(trades))


def compute_strategy_stats(
    trades: Sequence[TradeResult],
    initial_equity: float = 1.0,
    *,
    max_drawdown: float | None = None,
) -> StrategyStats:
    """The seed's statistics, in the given trade order (expectancy: see the module note).

    ``max_drawdown`` (a fraction, <= 0) is the backtest's own: the metrics' maximum drawdown
    of the equity curve marked to market every bar, ``max_drawdown_pct / 100`` - give it
    whenever there is a backtest, so every page shows the same drawdown.  Without it (a bare
    list of trades) the drawdown of the closed-trade equity is used, which misses the losses
    of open positions and so is never deeper.

    Raises :class:`NoTradesError` without trades.  Streaks follow the seed: a trade of
    exactly zero neither extends nor breaks a streak.
    """
    if not trades:
        raise NoTradesError()
    n = len(trades)
    wins = [t.pnl_frac for t in trades if t.pnl_frac > 0]
    losses = [t.pnl_frac for t in trades if t.pnl_frac < 0]
    win_rate = len(wins) / n
    loss_rate = len(losses) / n
    avg_win = sum(wins) / len(wins) if wins else 0.0
    avg_loss = sum(losses) / len(losses) if losses else 0.0
    expectancy = win_rate * avg_win + loss_rate * avg_loss

    equity = initial_equity
    peak = initial_equity
    max_dd = 0.0
    max_consec_losses = max_consec_wins = cur_losses = cur_wins = 0
    for t in trades:
        equity *= 1 + t.pnl_frac
        peak = max(peak, equity)
        max_dd = min(max_dd, (equity - peak) / peak)
        if t.pnl_frac > 0:
            cur_wins += 1
            cur_losses = 0
        elif t.pnl_frac < 0:
            cur_losses += 1
            cur_wins = 0
        max_consec_losses = max(max_consec_losses, cur_losses)
        max_consec_wins = max(max_consec_wins, cur_wins)

    ordered = sorted(trades, key=lambda x: x.timestamp)
    span_days = (ordered[-1].timestamp - ordered[0].timestamp).days or 1
    return StrategyStats(
        n_trades=n,
        win_rate=win_rate,
        avg_win=avg_win,
        avg_loss=avg_loss,
        expectancy_per_trade=expectancy,
        max_consec_losses=max_consec_losses,
        max_consec_wins=max_consec_wins,
        max_drawdown_pct=max_dd if max_drawdown is None else float(max_drawdown),
        years_covered=span_days / 365.25,
    )
