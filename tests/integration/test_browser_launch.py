"""An operator launches a job from the lab pages in headless chromium; a real worker runs it."""

from __future__ import annotations

import pytest
from django.db import connections
from playwright.sync_api import Error as PlaywrightError

from apps.optimization.models import OptimizationRun
from tests.integration.conftest import GRID_2000, SCREENSHOTS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = SCREENSHOTS / "launch_job.png"


@pytest.fixture
def olivia(django_user_model):
    return django_user_model.objects.create_user("olivia", password="olivia-pw-123")


def test_an_operator_launches_a_job_and_sees_its_best_parameters(
    live_server, olivia, hourly_datasets, start_worker, failure_report, page
):
    dataset = next(d for d in hourly_datasets if d.symbol == "BTC")
    start_worker("browser", concurrency=2)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)

    log_in(page, live_server, "olivia", "olivia-pw-123")

    page.goto(f"{live_server.url}/lab/jobs/new/")
    page.fill("#id_name", "Browser: BTC 1h sweep")
    assert page.input_value("#id_strategy") == "sma_cross"
    page.select_option("#id_datasets", value=str(dataset.id))
    page.fill("#id_p_fast", "5:50:5")
    page.fill("#id_p_slow", "20:200:20")
    page.fill("#id_p_sl_pct", ", ".join(str(v) for v in GRID_2000["sl_pct"]))
    page.fill("#id_p_rr", "2, 3")
    # Before launch the form counts what will run: fast >= slow breaks the strategy's
    # constraint fast < slow (slow 20: fast 20..50, 7 values; slow 40: fast 40..50, 3) -> 10
    # pairs x 4 stops x 2 targets = 80 combinations skipped, never run.
    page.locator("#id_p_rr").press("Tab")
    plan = page.locator("#launch-plan")
    plan.filter(has_text="720 runs").wait_for(timeout=10_000)
    assert plan.inner_text().startswith(
        "10 × 10 × 4 × 2 = 800 combinations, 80 skipped by fast < slow, 720 runs"
    )
    page.click("#launch-btn")

    page.wait_for_url(f"{live_server.url}/lab/jobs/*/")
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    try:
        # The status section is swapped every 2 s; the selector is re-queried each time.
        page.wait_for_selector('#job-progress[data-pct="100.0"]', timeout=120_000)
    except PlaywrightError:
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        report = failure_report(job_id)
        connections.close_all()  # opened under Playwright's loop, it would outlive the test
        pytest.fail(f"the job page never reached 100 %\n{report}", pytrace=False)

    assert page.inner_text("#job-status-badge").strip() == "Succeeded"
    assert page.locator("#best-table tbody tr").count() == 10  # the top 10 of 720 runs
    ranks = page.locator("#best-table tbody tr td:first-child").all_inner_texts()
    assert ranks == [str(i) for i in range(1, 11)]
    sharpes = [float(v) for v in page.locator("#best-table td.objective").all_inner_texts()]
    assert sharpes == sorted(sharpes, reverse=True)  # best first by the objective
    # the runs stored are the runs the preview announced
    assert "720 / 720 runs" in page.inner_text("#job-progress")
    assert OptimizationRun.objects.filter(job_id=job_id).count() == 720
    page.screenshot(path=str(SCREENSHOT), full_page=True)
