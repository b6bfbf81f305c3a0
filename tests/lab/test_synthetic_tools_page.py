"""The Synthetic environment tools page: login, links, the three panels and the seed's ids."""

import re

import pytest

from backtestlab.engine.options_selector_rules import SELECTOR_RULES
from backtestlab.engine.synthetic import ENVIRONMENT_METRICS

pytestmark = pytest.mark.django_db

SEED_IDS = [
    "env-heatmap-panel",
    "env-underlying-select",
    "env-horizon-input",
    "env-decision-interval-input",
    "env-x-metric-select",
    "env-y-metric-select",
    "env-x-start-input",
    "env-x-step-input",
    "env-x-points-input",
    "env-y-start-input",
    "env-y-step-input",
    "env-y-points-input",
    "env-heatmap-run-btn",
    "env-heatmap-status",
    "env-heatmap-table",
]


@pytest.fixture
def page(client, alice):
    client.force_login(alice)
    response = client.get("/lab/synthetic/")
    assert response.status_code == 200
    return response.content.decode()


def value_of(html, element_id):
    tag = re.search(rf'<[^>]*\bid="{element_id}"[^>]*>', html).group(0)
    return re.search(r'\bvalue="([^"]*)"', tag).group(1)


def test_the_page_requires_login(client):
    response = client.get("/lab/synthetic/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_page_shows_the_three_panels_in_order(page):
    titles = [
        "Selector Frequency Scan (Synthetic)",
        "Selector Heatmap (Synthetic)",
        "Environment Heatmap (Synthetic)",
    ]
    positions = [page.index(t) for t in titles]
    assert positions == sorted(positions)
    assert "Explore where the market actually spends time in the synthetic universe" in page
    assert "Run Environment Heatmap" in page


def test_the_page_carries_every_element_id_of_the_seed_once(page):
    for element_id in SEED_IDS:
        assert page.count(f'id="{element_id}"') == 1, element_id


def test_the_environment_panel_starts_on_the_seeds_defaults(page):
    expected = {
        "env-horizon-input": "365",
        "env-decision-interval-input": "1",
        "env-x-start-input": "5",
        "env-x-step-input": "5",
        "env-x-points-input": "5",
        "env-y-start-input": "15",
        "env-y-step-input": "5",
        "env-y-points-input": "5",
    }
    for element_id, value in expected.items():
        assert value_of(page, element_id) == value, element_id


def test_the_metric_selects_list_the_servers_metrics_with_labels(page):
    select = re.search(r'id="env-x-metric-select".*?</select>', page, re.S).group(0)
    options = re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', select)
    assert options == list(ENVIRONMENT_METRICS.items())
    assert '<option value="adx_14d" selected>' in re.search(
        r'id="env-y-metric-select".*?</select>', page, re.S
    ).group(0)


def test_the_selector_panels_offer_every_threshold_with_its_default(page):
    for prefix in ("scan", "sel-heatmap"):
        for rule in SELECTOR_RULES:
            assert float(value_of(page, f"{prefix}-thr-{rule.param}")) == rule.default
    for element_id in ("scan-run-btn", "scan-status", "scan-table", "sel-heatmap-run-btn"):
        assert f'id="{element_id}"' in page
    assert 'id="synthetic-catalogue"' in page and "js/synthetic_tools.js" in page
    assert value_of(page, "scan-start-input") == "-5" and value_of(page, "scan-step-input") == "2.5"
    assert value_of(page, "scan-thr-min_vrp_30d") == "5"  # not 5.0


def test_the_top_nav_and_the_job_list_link_to_the_page(client, alice):
    client.force_login(alice)
    html = client.get("/lab/").content.decode()
    assert re.search(r'href="/lab/synthetic/" id="nav-synthetic"', html)
    assert re.search(r'href="/lab/synthetic/" id="synthetic-tools-btn"', html)
    assert '<meta name="csrf-token"' in html
