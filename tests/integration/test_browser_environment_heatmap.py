"""An operator runs the Environment Heatmap (and a selector scan) in headless chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.integration.conftest import SCREENSHOTS, log_in

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DONE = "Heatmap complete. Cell value = % of decision steps (occupancy)."


@pytest.fixture
def olga(django_user_model):
    return django_user_model.objects.create_user("olga", password="olga-pw-123")


def test_an_operator_runs_the_environment_heatmap_and_reads_a_table_of_percent_cells(
    live_server, olga, page
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page, live_server, "olga", "olga-pw-123")
    expect(page.locator("#synthetic-tools-btn")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "job_list_links.png"))

    page.click("#nav-synthetic")
    page.wait_for_url(f"{live_server.url}/lab/synthetic/")
    expect(page.locator("#env-heatmap-table")).to_contain_text("press Run Environment Heatmap")
    page.screenshot(path=str(SCREENSHOTS / "synthetic_tools_before_run.png"), full_page=True)

    # Picking a metric proposes a grid for its range (from the server's catalogue).
    page.select_option("#env-x-metric-select", "iv_rank_6m")
    assert page.input_value("#env-x-start-input") == "0"
    assert page.input_value("#env-x-step-input") == "10"
    assert page.input_value("#env-x-points-input") == "10"
    page.select_option("#env-y-metric-select", "rsi_14d")
    page.fill("#env-horizon-input", "730")
    page.click("#env-heatmap-run-btn")

    status = page.locator("#env-heatmap-status")
    expect(status).to_have_text(DONE)
    assert status.evaluate("el => getComputedStyle(el).color") == "rgb(21, 128, 61)"  # green
    table = page.locator("#env-heatmap-table")
    assert table.locator("th.corner").inner_text() == "RSI 14d \\ IV Rank 6m"
    headers = table.locator("thead th").all_inner_texts()
    assert headers[1:4] == ["0", "10", "20"] and len(headers) == 11
    rows = table.locator("tbody tr")
    assert rows.count() == 10
    cells = table.locator("tbody td").all_inner_texts()
    assert len(cells) == 100 and all(re.fullmatch(r"\d+(\.\d)?%", c) for c in cells)
    assert abs(sum(float(c[:-1]) for c in cells) - 100) < 5
    expect(page.locator("#env-heatmap-coverage")).to_contain_text("of 730 decision steps")
    expect(page.locator("#env-heatmap-legend")).to_contain_text("darker blue")
    page.locator("#env-heatmap-section").screenshot(
        path=str(SCREENSHOTS / "environment_heatmap.png")
    )

    # A bad step: the error in red, naming the field, and the box marked.
    page.fill("#env-y-step-input", "0")
    page.click("#env-heatmap-run-btn")
    expect(status).to_contain_text("y_step must be > 0")
    assert status.evaluate("el => getComputedStyle(el).color") == "rgb(185, 28, 28)"  # red
    expect(page.locator("#env-y-step-input")).to_have_class(re.compile("invalid"))
    expect(table).to_contain_text("No result: see the error above")
    assert page.locator("#env-heatmap-coverage").is_hidden()
    assert page.locator("#env-heatmap-legend").is_hidden()
    page.fill("#env-y-step-input", "10")
    expect(page.locator("#env-y-step-input")).not_to_have_class(re.compile("invalid"))

    # The selector scan on the same page, with its suggested grid.
    page.click("#scan-run-btn")
    expect(page.locator("#scan-status")).to_contain_text("Scan complete.")
    scan_cells = page.locator("#scan-table tbody td.cell").all_inner_texts()
    assert len(scan_cells) == 8 and all(c.endswith("%") for c in scan_cells)
    page.click("#sel-heatmap-run-btn")
    expect(page.locator("#sel-heatmap-status")).to_contain_text("Heatmap complete.")
    assert page.locator("#sel-heatmap-table tbody td").count() == 8 * 13
    page.screenshot(path=str(SCREENSHOTS / "synthetic_tools.png"), full_page=True)
