"""The paper-trading loop: each enabled PaperBook trades its key's current StrategyConfig over
the synthetic bars that became available since its last step, with the RiskManager called
before every paper order.

Time: a book's synthetic day ``d`` (0 = ``start_day``) becomes available once the real date is
past it; the universe extends forward deterministically day by day (the prefix property of
``backtestlab.engine.synthetic``), so regenerating it for more days never changes the past.
Candidates are the strategy's trades opened on the new days (one position at a time per
book: the simulator's); ``estimated_max_loss_pct`` comes
from the strategy (only options_selector estimates a trade's maximum loss, so only its books
trade; others are refused with that reason). Open positions are every paper trade on the same
underlying, in any book, still open at the candidate's time (correlated risk is per account).

Idempotent: RiskDecision is unique per (book, opened_at, underlying), so a step repeated or run
twice records nothing twice; the book row is locked for the step.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from apps.strategies.models import PaperBook, PaperTrade, RiskDecision
from apps.strategies.selectors.configs import risk_config_for, strategy_config_current
from backtestlab.celery import app
from backtestlab.engine import synthetic
from backtestlab.engine.risk import RiskManager, RiskTrade, risk_filter
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.errors import ApplicationError

WARMUP_DAYS = 40  # the options selector's 30-day realised volatility needs this much history
MAX_DAYS_PER_STEP = 366
DAY = dt.timedelta(days=1)
PAPER_STEP_TASK = "apps.strategies.tasks.paper_step"


def _origin(book: PaperBook) -> dt.datetime:
    start = dt.datetime.combine(book.start_day, dt.time(), tzinfo=dt.UTC)
    return start - WARMUP_DAYS * DAY


def book_strategy_id(book: PaperBook) -> str:
    """The seed's ``strategy_id``: the daily cap counts new trades per strategy, over all of
    its books (symbols, timeframes, patterns)."""
    return book.strategy


def _candidates(book: PaperBook, params: dict, total_days: int):
    strategy = get_strategy(book.strategy)
    if not hasattr(strategy, "trade_results"):
        raise ApplicationError(
            f"{book.strategy} does not estimate a trade's maximum loss, which the risk manager "
            "needs; paper trading supports options_selector",
            field="strategy",
        )
    # The simulator records a trade once it settles, so the universe runs ``holding_days`` past
    # the last available day: entries are causal (decided on data up to their day), and the
    # settlement's PnL is only shown once the book's clock has passed it.  A position the
    # simulator still holds at the universe's end is only marked there, never a trade; every
    # entry before the clock settles inside the universe, so no candidate is lost that way.
    holding = int(strategy.parameter_space().validate_params(params).get("holding_days", 0))
    n = WARMUP_DAYS + total_days + holding + 2
    start = int(_origin(book).timestamp())
    env = synthetic.synthetic_environment(book.symbol, days=n, start=start)
    candles = synthetic.resample(
        synthetic.synthetic_candles(book.symbol, days=n, start=start), "1h"
    )
    ctx = strategy.prepare(env, {"candles": candles})
    spot = {int(ts): float(p) for ts, p in zip(env.ts, ctx.spot, strict=True)}
    return strategy.trade_results(ctx, params, Costs()), spot


def paper_book_step(*, book_id: int, today: dt.date | None = None) -> dict:
    """Trade the days that became available; returns what was decided."""
    today = today or timezone.now().date()
    with transaction.atomic():
        book = PaperBook.objects.select_for_update().get(id=book_id)
        available = min((today - book.start_day).days, book.days_done + MAX_DAYS_PER_STEP)
        if not book.enabled or available <= book.days_done:
            return {"book": book.id, "days": 0, "allowed": 0, "vetoed": 0}
        config = strategy_config_current(book.strategy, book.symbol, book.timeframe, book.pattern)
        if config is None:
            raise ApplicationError(f"{book} has no production parameters to trade", status=409)
        trades, spot = _candidates(book, config.params, available)
        lo = _origin(book) + (WARMUP_DAYS + book.days_done) * DAY
        hi = _origin(book) + (WARMUP_DAYS + available) * DAY
        new = [t for t in trades if lo <= t.timestamp < hi]
        rm = RiskManager(risk_config_for(book.strategy).as_engine())
        sid = book_strategy_id(book)
        for day_start in {t.timestamp.replace(hour=0, minute=0, second=0) for t in new}:
            for _ in PaperTrade.objects.filter(
                book__strategy=book.strategy,
                opened_at__gte=day_start,
                opened_at__lt=day_start + DAY,
            ):
                rm.record_trade(sid, day_start)  # today's allowed trades count toward the cap
        open_positions = [
            RiskTrade(p.opened_at, p.closed_at, p.underlying, p.estimated_max_loss_pct)
            for p in PaperTrade.objects.filter(underlying=book.symbol, closed_at__gt=lo)
        ]
        candidates = [
            RiskTrade(t.timestamp, t.settled_at, t.underlying, t.estimated_max_loss_pct, t.pnl_frac)
            for t in new
        ]
        verdicts = risk_filter(
            candidates, rm.config, sid, manager=rm, open_positions=open_positions
        )
        allowed = vetoed = 0
        for v in verdicts:
            t = v.trade
            trade = None
            if v.allowed:
                trade = PaperTrade.objects.create(
                    book=book, config_version=config.version, underlying=t.underlying, side=-1,
                    opened_at=t.opened_at, closed_at=t.closes_at,
                    entry_price=spot.get(int(t.opened_at.timestamp()), 0.0),
                    estimated_max_loss_pct=t.estimated_max_loss_pct, pnl_pct=t.pnl_frac,
                )  # fmt: skip
                allowed += 1
            else:
                vetoed += 1
            RiskDecision.objects.create(
                book=book, strategy_id=sid, underlying=t.underlying,
                estimated_max_loss_pct=t.estimated_max_loss_pct, opened_at=t.opened_at,
                allowed=v.allowed, reason=v.reason or "", kind=v.kind or "", trade=trade,
            )  # fmt: skip
        book.days_done = available
        book.equity = book.initial_equity * paper_growth(book, hi)
        book.save(update_fields=["days_done", "equity", "updated_at"])
    return {"book": book.id, "days": len({t.timestamp.date() for t in new}), "allowed": allowed,
            "vetoed": vetoed}  # fmt: skip


def paper_growth(book: PaperBook, now: dt.datetime) -> float:
    """Equity multiple from the trades settled by ``now`` (each a fraction of equity)."""
    growth = 1.0
    for pnl in (
        book.trades.filter(closed_at__lte=now)
        .order_by("closed_at")
        .values_list("pnl_pct", flat=True)
    ):
        growth *= 1.0 + (pnl or 0.0)
    return growth


def paper_books_step(*, today: dt.date | None = None) -> list[dict]:
    """The beat task's body: step every enabled book; a failing book does not stop the rest."""
    out = []
    for book_id in PaperBook.objects.filter(enabled=True).values_list("id", flat=True):
        try:
            out.append(paper_book_step(book_id=book_id, today=today))
        except ApplicationError as exc:
            out.append({"book": book_id, "error": exc.message})
    return out


def paper_step_enqueue() -> None:
    """Ask a worker for a paper step now (beat asks hourly): after an apply, the books of the
    key trade the new parameters without waiting for the next tick."""
    app.send_task(PAPER_STEP_TASK, queue="housekeeping")


def paper_book_now(book: PaperBook) -> dt.datetime:
    return _origin(book) + (WARMUP_DAYS + book.days_done) * DAY


def paper_overview(books) -> list[dict]:
    """Positions, PnL and the veto log of each book (page and API)."""
    data = []
    for book in books:
        now = paper_book_now(book)
        trades = list(book.trades.order_by("-opened_at")[:200])
        data.append({
            "id": book.id, "strategy": book.strategy, "symbol": book.symbol,
            "timeframe": book.timeframe, "pattern": book.pattern, "enabled": book.enabled,
            "start_day": book.start_day, "days_done": book.days_done, "as_of": now,
            "equity": book.equity, "pnl_pct": (book.equity / book.initial_equity - 1) * 100,
            "open_positions": [_trade(t) for t in trades if t.opened_at <= now < t.closed_at],
            "closed_trades": [{**_trade(t), "pnl_pct": t.pnl_pct}
                              for t in trades if t.closed_at <= now][:50],
            "vetoes": [
                {"opened_at": d.opened_at, "underlying": d.underlying, "kind": d.kind,
                 "reason": d.reason, "estimated_max_loss_pct": d.estimated_max_loss_pct}
                for d in book.decisions.filter(allowed=False).order_by("-opened_at")[:100]
            ],
        })  # fmt: skip
    return data


def _trade(t: PaperTrade) -> dict:
    return {"id": t.id, "underlying": t.underlying, "opened_at": t.opened_at,
            "closes_at": t.closed_at, "config_version": t.config_version,
            "estimated_max_loss_pct": t.estimated_max_loss_pct}  # fmt: skip
