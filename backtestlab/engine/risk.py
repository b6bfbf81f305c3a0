"""The risk manager of seed 002: vetoes a new trade that would exceed the per-trade risk, the
correlated risk on its underlying (open positions plus the candidate) or the daily cap of new
trades per strategy. Checks run in that order and the first failing one gives the reason.

Pure: frozen dataclasses in, ``(allowed, reason)`` out; the only state is the per-(strategy,
day) counter of allowed trades (a vetoed trade never moves it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class OpenPosition:
    position_id: str
    underlying: str
    estimated_max_loss_pct: float  # max possible loss as a fraction of equity
    opened_at: datetime


@dataclass(frozen=True)
class CandidateTrade:
    underlying: str
    estimated_max_loss_pct: float  # worst-case loss as a fraction of equity (conservative)
    opened_at: datetime
    strategy_id: str


@dataclass(frozen=True)
class RiskConfig:
    max_risk_per_trade: float = 0.01  # 1 %
    max_risk_per_underlying: float = 0.03  # 3 %
    max_new_trades_per_day: int = 2
    enabled: bool = True


# The reason's kind, for counting vetoes by reason (the message carries the numbers).
PER_TRADE, PER_UNDERLYING, DAILY_CAP = "per_trade", "per_underlying", "daily_cap"


def veto_kind(reason: str | None) -> str | None:
    if reason is None:
        return None
    if reason.startswith("per-trade"):
        return PER_TRADE
    if reason.startswith("correlated"):
        return PER_UNDERLYING
    return DAILY_CAP


class RiskManager:
    def __init__(self, config: RiskConfig):
        self.config = config
        self._new_trades_by_day: dict[tuple[str, date], int] = defaultdict(int)

    def reset_daily_counter(self) -> None:
        """The seed's daily reset: forget every day's count of new trades."""
        self._new_trades_by_day.clear()

    def trades_today(self, strategy_id: str, now: datetime) -> int:
        return self._new_trades_by_day.get((strategy_id, now.date()), 0)

    def record_trade(self, strategy_id: str, now: datetime) -> None:
        """Count an already-allowed trade (a paper loop restoring today's counter)."""
        self._new_trades_by_day[(strategy_id, now.date())] += 1

    def counters(self) -> dict[tuple[str, date], int]:
        return dict(self._new_trades_by_day)

    def check_trade(
        self, candidate: CandidateTrade, open_positions: Sequence[OpenPosition]
    ) -> tuple[bool, str | None]:
        if not self.config.enabled:
            return True, None
        cfg = self.config
        now = candidate.opened_at

        if candidate.estimated_max_loss_pct > cfg.max_risk_per_trade:
            return False, (
                f"per-trade risk {candidate.estimated_max_loss_pct:.2%} "
                f"exceeds limit {cfg.max_risk_per_trade:.2%}"
            )

        total_underlying_risk = (
            sum(
                p.estimated_max_loss_pct
                for p in open_positions
                if p.underlying == candidate.underlying
            )
            + candidate.estimated_max_loss_pct
        )
        if total_underlying_risk > cfg.max_risk_per_underlying:
            return False, (
                f"correlated risk on {candidate.underlying} would be "
                f"{total_underlying_risk:.2%} > limit {cfg.max_risk_per_underlying:.2%}"
            )

        trades_today = self.trades_today(candidate.strategy_id, now)
        if trades_today >= cfg.max_new_trades_per_day:
            return False, (
                f"daily trade cap reached for strategy {candidate.strategy_id} "
                f"({trades_today}/{cfg.max_new_trades_per_day})"
            )

        self.record_trade(candidate.strategy_id, now)
        return True, None


# --- a run of trades through the risk manager (backtests and the paper loop) ---------------


@dataclass(frozen=True)
class RiskTrade:
    """A candidate with its known lifetime: open between ``opened_at`` and ``closes_at``."""

    opened_at: datetime
    closes_at: datetime
    underlying: str
    estimated_max_loss_pct: float
    pnl_frac: float = 0.0  # the trade's PnL as a fraction of equity


@dataclass(frozen=True)
class RiskVerdict:
    trade: RiskTrade
    allowed: bool
    reason: str | None
    kind: str | None


def risk_filter(
    trades: Sequence[RiskTrade],
    config: RiskConfig,
    strategy_id: str,
    *,
    manager: RiskManager | None = None,
    open_positions: Sequence[RiskTrade] = (),
) -> list[RiskVerdict]:
    """Check each trade, in time order, against the positions still open at its time (those
    given plus the ones allowed before it); vetoed trades never open."""
    rm = manager or RiskManager(config)
    live = list(open_positions)
    verdicts = []
    for t in sorted(trades, key=lambda t: t.opened_at):
        open_now = [
            OpenPosition(str(i), p.underlying, p.estimated_max_loss_pct, p.opened_at)
            for i, p in enumerate(live)
            if p.opened_at <= t.opened_at < p.closes_at
        ]
        ok, reason = rm.check_trade(
            CandidateTrade(t.underlying, t.estimated_max_loss_pct, t.opened_at, strategy_id),
            open_now,
        )
        if ok:
            live.append(t)
        verdicts.append(RiskVerdict(t, ok, reason, veto_kind(reason)))
    return verdicts


def risk_summary(verdicts: Sequence[RiskVerdict]) -> dict:
    """Counts by reason and the compounded return with and without the vetoed trades (%)."""
    by_kind: dict[str, int] = {}
    for v in verdicts:
        if not v.allowed:
            by_kind[v.kind or ""] = by_kind.get(v.kind or "", 0) + 1
    all_ret = kept_ret = 1.0
    for v in verdicts:
        all_ret *= 1.0 + v.trade.pnl_frac
        if v.allowed:
            kept_ret *= 1.0 + v.trade.pnl_frac
    return {
        "candidates": len(verdicts),
        "allowed": sum(v.allowed for v in verdicts),
        "vetoed": sum(not v.allowed for v in verdicts),
        "vetoed_by_reason": by_kind,
        "return_pct_without_risk": (all_ret - 1.0) * 100.0,
        "return_pct_with_risk": (kept_ret - 1.0) * 100.0,
    }
