"""The Content-Security-Policy breaks no page: headless chromium reports no violation.

Every page of the lab (and the API docs, the admin) is opened logged in as staff; chromium
logs each refused script, style or connection on the console, and none may appear.
"""

from __future__ import annotations

import pytest

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from tests.factories import make_job
from tests.integration.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sam(django_user_model):
    return django_user_model.objects.create_user(
        "sam", password="sam-pw-12345", is_staff=True, is_superuser=True
    )


@pytest.fixture
def job(sam):
    synthetic_universe_create(symbols=("BTC",), days=30, timeframes=("1h",))
    candles = Dataset.objects.get(kind=Dataset.Kind.CANDLES)
    return make_job(sam, [candles], grid={"fast": [5, 10], "slow": [50]})


def test_no_page_violates_the_content_security_policy(live_server, sam, job, page):
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: (
            violations.append(f"{page.url}: {msg.text}")
            if "Content Security Policy" in msg.text
            else None
        ),
    )
    log_in(page, live_server, "sam", "sam-pw-12345")

    for path in (
        "/lab/",
        "/lab/jobs/new/",
        f"/lab/jobs/{job.id}/",
        "/lab/synthetic/",
        "/lab/carry/compare/",
        "/admin/",
        "/admin/optimization/optimizationjob/add/",
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200 and page.url == f"{live_server.url}{path}", path
        page.wait_for_load_state("networkidle")

    # htmx works under the policy: choosing a strategy swaps the parameter fields in.
    page.goto(f"{live_server.url}/lab/jobs/new/")
    page.select_option("#id_strategy", "smc_zones")
    page.wait_for_selector("input[name=p_pattern_type]")

    # Swagger UI loads its setup script from /api/docs/?script and renders the operations.
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)

    assert violations == []
