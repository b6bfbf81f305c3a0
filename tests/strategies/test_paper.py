"""The paper loop over 30 synthetic days with a tight risk config: vetoes recorded with their
reasons, no limit ever exceeded, a repeated step records nothing twice."""

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.strategies.models import PaperBook, PaperTrade, RiskConfig, RiskDecision, StrategyConfig
from apps.strategies.services.paper import paper_book_step, paper_books_step

pytestmark = pytest.mark.django_db

START = dt.date(2025, 1, 1)
# Selector thresholds wide open: a candidate every day, so the limits are what decides.
PARAMS = {
    "max_loss_pct": 0.8, "holding_days": 7, "decision_interval_days": 1, "min_vrp_30d": -50.0,
    "min_iv_rank_6m": 0.0, "max_adx_14d": 100.0, "min_rsi_14d": 0.0, "max_rsi_14d": 100.0,
}  # fmt: skip


@pytest.fixture
def books():
    RiskConfig.objects.create(
        strategy="options_selector", max_risk_per_trade=Decimal("0.01"),
        max_risk_per_underlying=Decimal("0.02"), max_new_trades_per_day=1,
    )  # fmt: skip
    # three BTC books (0.8 % each, overlapping holds: the third open one would be 2.4 %) and
    # one ETH book risking 1.5 % a trade
    for symbol, pattern, params in (
        ("BTC", "", PARAMS),
        ("BTC", "b", {**PARAMS, "holding_days": 10}),
        ("BTC", "c", {**PARAMS, "holding_days": 5}),
        ("ETH", "", {**PARAMS, "max_loss_pct": 1.5}),
    ):
        key = {"strategy": "options_selector", "symbol": symbol, "timeframe": "1d",
               "pattern": pattern}  # fmt: skip
        StrategyConfig.objects.create(**key, version=1, params=params)
        PaperBook.objects.create(**key, start_day=START)
    return list(PaperBook.objects.order_by("id"))


def test_thirty_days_with_a_tight_risk_config_record_vetoes_and_keep_every_limit(books):
    for day in [*range(1, 30, 3), 30]:  # beat steps every few days, catching up
        paper_books_step(today=START + dt.timedelta(days=day))
    eth = books[3]
    assert {b.days_done for b in PaperBook.objects.all()} == {30}
    decisions = RiskDecision.objects.all()
    vetoes = decisions.filter(allowed=False)
    assert vetoes.exists() and all(v.reason and v.kind for v in vetoes)
    # ETH risks 1.5 % a trade: every one vetoed by the per-trade limit, none traded
    eth_vetoes = vetoes.filter(book=eth)
    assert eth_vetoes.exists() and set(eth_vetoes.values_list("kind", flat=True)) == {"per_trade"}
    assert eth_vetoes.first().reason == "per-trade risk 1.50% exceeds limit 1.00%"
    assert not PaperTrade.objects.filter(book=eth).exists()
    # BTC: at most 2 % open on BTC over all books, at most one new trade a day per strategy
    btc_kinds = set(vetoes.filter(underlying="BTC").values_list("kind", flat=True))
    assert btc_kinds and btc_kinds <= {"per_underlying", "daily_cap"}
    trades = list(PaperTrade.objects.filter(underlying="BTC"))
    assert len({t.book_id for t in trades}) >= 2
    for t in trades:
        open_risk = sum(
            o.estimated_max_loss_pct for o in trades if o.opened_at <= t.opened_at < o.closed_at
        )
        assert open_risk <= 0.02 + 1e-12
    days = [t.opened_at.date() for t in trades]
    assert len(days) == len(set(days))
    assert decisions.filter(allowed=True).count() == len(trades)


def test_a_repeated_step_records_nothing_twice(books):
    today = START + dt.timedelta(days=30)
    paper_book_step(book_id=books[0].id, today=today)
    n = RiskDecision.objects.count()
    assert paper_book_step(book_id=books[0].id, today=today)["days"] == 0
    assert RiskDecision.objects.count() == n


def test_the_paper_page_and_api_show_positions_pnl_and_vetoes(client, alice, books):
    paper_books_step(today=START + dt.timedelta(days=30))
    # Each book's clock stands at the end of its 30th day: trades settled by then count in
    # its PnL (each trade's pnl_pct is a fraction of equity, compounded); later ones are open.
    now = dt.datetime.combine(START + dt.timedelta(days=30), dt.time(), tzinfo=dt.UTC)
    api = APIClient()
    api.force_authenticate(alice)
    body = api.get("/api/paper/").json()
    assert [b["symbol"] for b in body["books"]] == ["BTC", "BTC", "BTC", "ETH"]
    assert body["books"][3]["vetoes"][0]["kind"] == "per_trade"
    settled_somewhere = False
    for book, shown in zip(books, body["books"], strict=True):
        trades = list(PaperTrade.objects.filter(book=book))
        closed = [t for t in trades if t.closed_at <= now]
        growth = 1.0
        for t in closed:
            growth *= 1.0 + t.pnl_pct
        settled_somewhere |= bool(closed)
        assert shown["pnl_pct"] == pytest.approx((growth - 1.0) * 100, rel=1e-12, abs=1e-12)
        assert shown["equity"] == pytest.approx(book.initial_equity * growth, rel=1e-12)
        assert sorted(p["id"] for p in shown["open_positions"]) == sorted(
            t.id for t in trades if t.opened_at <= now < t.closed_at
        )
        assert sorted(t["id"] for t in shown["closed_trades"]) == sorted(t.id for t in closed)
    assert settled_somewhere  # otherwise every PnL above is a trivial 0
    assert body["books"][3]["pnl_pct"] == 0.0 and body["books"][3]["open_positions"] == []
    client.force_login(alice)
    html = client.get("/lab/paper/").content.decode()
    assert 'id="paper-books"' in html and "per-trade risk 1.50% exceeds limit 1.00%" in html
    for shown in body["books"]:
        section = html.split(f'id="paper-book-{shown["id"]}"', 1)[1].split("</section>", 1)[0]
        assert f"PnL <strong>{shown['pnl_pct']:.2f} %</strong>" in section
