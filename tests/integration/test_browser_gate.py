"""The README's approval walk-through, clicked in headless chromium on `make run`'s demo data:
the demo sweep, its best run, Monte Carlo, walk-forward, Evaluate for approval (PILOT), Apply
(a new production version) and the paper book trading it. A real worker runs every job and the
paper step the apply asks for; each step saves a screenshot."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connections
from playwright.sync_api import expect

from apps.lab.management.commands.bootstrap_demo import (
    DEMO_DAYS,
    GATE_JOB_NAME,
    GATE_STRATEGY,
    GATE_SYMBOL,
)
from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.strategies.models import PaperBook, PaperTrade, StrategyApproval, StrategyConfig
from tests.integration.conftest import SCREENSHOTS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "admin-pw-123"
JOB_TIMEOUT_MS = 180_000


@pytest.fixture
def demo(transactional_db, monkeypatch):
    """`make run`'s bootstrap on the full four years (the minute candles and the SMA sweep,
    which the walk-through does not use, left out to keep the run short)."""
    monkeypatch.setenv("ADMIN_PASSWORD", PASSWORD)
    call_command("bootstrap_demo", days=DEMO_DAYS, minute_days=0, no_sma_sweep=True)
    assert not StrategyConfig.objects.exists()  # no production version before the walk
    return OptimizationJob.objects.get(name=GATE_JOB_NAME), PaperBook.objects.get()


def finished(page, status: str = "succeeded") -> None:
    """Wait until the job page's live section says ``status``, then load the whole page (the
    evaluation section is not part of the live swap)."""
    page.wait_for_selector(f'#job-status[data-status="{status}"]', timeout=JOB_TIMEOUT_MS)
    page.reload()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"gate_{name}.png"), full_page=True)


def test_the_readme_walk_through_reaches_pilot_a_new_version_and_the_paper_book(
    live_server, demo, start_worker, failure_report, page
):
    sweep, book = demo
    start_worker("gate", concurrency=2)
    try:
        walk(page, live_server, sweep, book)
    except Exception:
        shot(page, "failure")
        print(failure_report(sweep.id))
        raise
    url = page.url
    # What the clicks wrote.
    best = OptimizationJob.objects.get(id=sweep.id).best_run
    approval = StrategyApproval.objects.filter(strategy=GATE_STRATEGY).latest("id")
    assert (approval.stage, approval.run_id) == ("PILOT", best.id)
    assert approval.gates["walk_forward"]["ok"] and "job" in approval.gates["walk_forward"]
    config = StrategyConfig.objects.get(strategy=GATE_STRATEGY, symbol=GATE_SYMBOL)
    assert (config.version, config.timeframe, config.pattern) == (1, "1d", "")
    assert config.params == OptimizationRun.objects.get(id=best.id).params
    trades = PaperTrade.objects.filter(book=book)
    assert trades.exists() and set(trades.values_list("config_version", flat=True)) == {1}
    assert url.endswith("/lab/paper/")
    connections.close_all()  # opened under Playwright's loop, they would outlive the test


def walk(page, live_server, sweep, book) -> None:
    lab = f"{live_server.url}/lab"
    log_in(page, live_server, "admin", PASSWORD)

    # 1. The demo sweep from the job list; it finishes on the worker.
    page.get_by_role("link", name=GATE_JOB_NAME).click()
    page.wait_for_url(f"{lab}/jobs/{sweep.id}/")
    finished(page)
    assert page.locator("#best-table tbody tr").count() > 0
    shot(page, "1_sweep")

    # 2. Its best run: equity curve, drawdown, trades.
    page.click("#best-table tbody tr:first-child a.run-link")
    page.wait_for_url(f"{lab}/jobs/{sweep.id}/runs/*/")
    page.wait_for_selector('#equity-chart[data-ready="true"] canvas')
    shot(page, "2_best_run")

    # 3. Monte Carlo of the best run (a job of its own).
    page.goto(f"{lab}/jobs/{sweep.id}/")
    page.click("#monte-carlo-btn")
    page.wait_for_url(f"{lab}/jobs/*/")
    assert page.url != f"{lab}/jobs/{sweep.id}/"
    finished(page)
    expect(page.locator("#mc-profile")).to_be_visible()
    shot(page, "3_monte_carlo")

    # 4. Walk-forward of the sweep's grid (the approval reads the latest one).
    page.goto(f"{lab}/jobs/{sweep.id}/")
    page.click("#walk-forward-btn")
    page.wait_for_url(f"{lab}/jobs/*/")
    finished(page)
    expect(page.locator("#wf-efficiency")).to_be_visible()
    expect(page.locator("#wf-folds")).to_be_visible()
    shot(page, "4_walk_forward")

    # 5. Evaluate for approval on the sweep's page: PILOT.
    page.goto(f"{lab}/jobs/{sweep.id}/")
    page.click("#evaluate-btn")
    page.wait_for_url(f"{lab}/jobs/{sweep.id}/")
    expect(page.locator("#approval-stage")).to_have_text("PILOT")
    expect(page.locator("#approval-reason")).to_contain_text("Suitable for small-size pilot")
    shot(page, "5_approval")

    # 6. Apply the best run: production version 1.
    page.click("#best-table tbody tr:first-child a.apply-button")
    page.wait_for_url(f"{lab}/jobs/{sweep.id}/runs/*/apply/")
    expect(page.locator("#apply-checks li.down")).to_have_count(0)
    page.click("#apply-form button[type=submit]")
    expect(page.locator("#apply-result")).to_contain_text("is now version 1")
    shot(page, "6_apply")

    # 7. The paper book trades it once the worker has run the step the apply asked for.
    page.click("#nav-paper")
    page.wait_for_url(f"{lab}/paper/")
    closed = page.locator(f"#paper-book-{book.id} table:has-text('PnL (fraction of equity)')")
    for _ in range(60):
        if closed.count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    expect(closed).to_be_visible()
    expect(page.locator(f"#paper-book-{book.id}")).to_contain_text("options_selector ETH 1d")
    shot(page, "7_paper")
