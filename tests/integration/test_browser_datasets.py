"""An operator uploads a CSV from the Datasets page, checks the preview and the gap report,
stores it, and launches a job on it; a real worker runs the job."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth.models import Permission
from django.db import connections

from apps.market.models import Dataset
from tests.integration.conftest import SCREENSHOTS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def olivia(django_user_model):
    user = django_user_model.objects.create_user("olivia", password="olivia-pw-123")
    user.user_permissions.add(Permission.objects.get(codename="add_dataset"))
    return user


def test_upload_preview_store_and_launch(
    live_server, olivia, start_worker, wait_for_job, failure_report, page, tmp_path
):
    n = 24 * 90
    rng = np.random.default_rng(12)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {"timestamp": pd.to_datetime(1_704_067_200 + 3600 * np.arange(n), unit="s", utc=True),
         "open": open_, "high": np.maximum(open_, close) * 1.001,
         "low": np.minimum(open_, close) * 0.999, "close": close, "volume": 3.0}
    ).drop(index=[100, 101, 102])  # fmt: skip
    path = tmp_path / "desk_btc_1h.csv"
    frame.to_csv(path, index=False)
    start_worker("datasets", concurrency=2)
    log_in(page, live_server, "olivia", "olivia-pw-123")

    page.goto(f"{live_server.url}/lab/datasets/")
    page.set_input_files("#id_file", str(path))
    page.click("#upload-btn")
    page.wait_for_selector("#upload-preview")
    assert "1 gap, 3 missing rows" in page.inner_text("#preview-gaps")
    assert page.locator("#preview-rows tbody tr").count() == 10  # first and last five
    assert page.input_value("#id_timeframe") == "1h"
    page.fill("#id_symbol", "BTC")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "datasets_preview.png"), full_page=True)
    page.click("#confirm-btn")
    page.wait_for_selector("tr.highlight")
    dataset = Dataset.objects.get(symbol="BTC")
    assert dataset.rows == n - 3

    page.goto(f"{live_server.url}/lab/jobs/new/")
    page.fill("#id_name", "Browser: on uploaded data")
    page.select_option("#id_datasets", value=str(dataset.id))
    page.fill("#id_p_fast", "5, 10")
    page.fill("#id_p_slow", "30, 60")
    page.click("#launch-btn")
    page.wait_for_url(f"{live_server.url}/lab/jobs/*/")
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    connections.close_all()
    job = wait_for_job(job_id, timeout=90)
    assert job.status == "succeeded", failure_report(job_id)
    assert job.completed_runs == 4
