"""An operator reads results in headless chromium: a finished job's heatmap (switching axes),
a run's equity curve, and two jobs compared. Each step saves a screenshot."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from tests.factories import SMALL_GRID, make_job, run_all_chunks
from tests.integration.conftest import SCREENSHOTS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SMC_GRID = {
    "pattern_type": ["imbalance", "order_block"],
    "rr_target": [1.5, 2.0, 2.5, 3.0],
    "sl_buffer_pct": [5, 10, 15, 20],
}


@pytest.fixture
def olivia(django_user_model):
    return django_user_model.objects.create_user("olivia", password="olivia-pw-123")


@pytest.fixture
def finished_jobs(transactional_db, olivia):
    """An smc_zones job (the seed's heatmap) and an sma_cross job, run in-process before the
    browser starts (Playwright's loop would refuse the ORM)."""
    synthetic_universe_create(symbols=("BTC",), days=120, timeframes=("1h",))
    dataset = Dataset.objects.get(kind=Dataset.Kind.CANDLES, symbol="BTC", timeframe="1h")
    smc = make_job(olivia, [dataset], grid=SMC_GRID, strategy="smc_zones",
                   objective="win_rate", name="Browser: SMC zones")  # fmt: skip
    sma = make_job(olivia, [dataset], grid=SMALL_GRID, name="Browser: SMA cross")
    run_all_chunks(smc)
    run_all_chunks(sma)
    return smc, sma


def test_an_operator_reads_heatmap_equity_and_a_comparison(live_server, finished_jobs, page):
    smc, sma = finished_jobs
    log_in(page, live_server, "olivia", "olivia-pw-123")

    # A finished job: the seed's heatmap, best cell marked, beside the best table.
    page.goto(f"{live_server.url}/lab/jobs/{smc.id}/")
    page.wait_for_selector("#heatmap-table")
    title = page.inner_text("#heatmap-title")
    assert title.startswith("Win rate by rr_target vs sl_buffer_pct"), title
    assert page.locator("#heatmap-best").count() == 1
    assert "*" in page.inner_text("#heatmap-best")
    page.wait_for_selector("#sensitivity-rr_target")
    assert page.locator("#best-table tbody tr").count() > 0
    page.screenshot(path=str(SCREENSHOTS / "results_job.png"), full_page=True)

    # Switch the heatmap's axes: columns become the pattern.
    page.select_option("#heatmap-x", "pattern_type")
    page.wait_for_selector('#heatmap-table[data-x="pattern_type"]')
    # Let htmx finish swapping and settling before the next choice, or the select it
    # replaces can swallow that choice.
    expect(page.locator(".htmx-request, .htmx-settling")).to_have_count(0)
    assert page.inner_text("#heatmap-title").startswith("Win rate by rr_target vs pattern_type")
    page.select_option("#heatmap-metric", "total_return_pct")
    page.wait_for_selector('#heatmap-table[data-metric="total_return_pct"]')
    assert page.locator("#heatmap-best").count() == 1
    page.locator("#heatmap").screenshot(path=str(SCREENSHOTS / "results_heatmap_axes.png"))

    # A run's equity curve, drawdown and trades.
    page.click("#best-table tbody tr:first-child a.run-link")
    page.wait_for_url(f"{live_server.url}/lab/jobs/{smc.id}/runs/*/")
    page.wait_for_selector('#equity-chart[data-ready="true"] canvas')
    page.wait_for_selector('#drawdown-chart[data-ready="true"] canvas')
    assert page.locator("#run-metrics tbody tr").count() == 16
    page.screenshot(path=str(SCREENSHOTS / "results_run_equity.png"), full_page=False)

    # Compare the two jobs from the job list.
    page.goto(f"{live_server.url}/lab/")
    page.check(f"#compare-{smc.id}")
    page.check(f"#compare-{sma.id}")
    page.click("#compare-btn")
    page.wait_for_url(f"{live_server.url}/lab/compare/*")
    page.wait_for_selector('#compare-chart[data-ready="true"] canvas')
    header = page.inner_text("#compare-table thead")
    assert "Browser: SMC zones" in header and "Browser: SMA cross" in header
    page.screenshot(path=str(SCREENSHOTS / "results_compare.png"), full_page=True)
