"""An sma_cross job on imported candles shows real bull / bear / chop coverage on the approval
card: the labels come from the data's own prices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from apps.market.models import Dataset
from apps.strategies.services import approval as approval_services
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_dataset_dir(settings, tmp_path):
    settings.DATASET_DIR = tmp_path / "datasets"


def test_an_imported_dataset_covers_all_three_regimes_on_the_card(client, alice, tmp_path):
    n = 24 * 240
    t = np.arange(n)
    rng = np.random.default_rng(21)
    close = 100 * np.exp(0.4 * np.sin(t / (24 * 30)) + np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.r_[close[0], close[:-1]]
    pd.DataFrame(
        {"date": pd.to_datetime(1_704_067_200 + 3600 * t, unit="s", utc=True), "open": open_,
         "high": np.maximum(open_, close) * 1.002, "low": np.minimum(open_, close) * 0.998,
         "close": close, "volume": 1.0}
    ).to_csv(tmp_path / "desk.csv", index=False)  # fmt: skip
    call_command("import_candles", str(tmp_path / "desk.csv"), symbol="BTC")
    dataset = Dataset.objects.get()
    job = make_job(alice, [dataset], grid={"fast": [5, 10, 20], "slow": [50, 100], "sl_pct": [3.0]})
    run_all_chunks(job)
    approval = approval_services.job_evaluate(job=job, trigger="page", user=alice)
    regimes = approval.gates["regimes"]
    assert regimes["bull"] and regimes["bear"] and regimes["chop"], regimes
    assert all(regimes["trades"][k] > 0 for k in ("bull", "bear", "chop")), regimes
    assert sum(regimes["trades"].values()) == approval.gates["stats"]["n_trades"]
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{job.id}/").content.decode()
    card = html.split('id="approval-regimes">')[1].split("</dd>")[0]
    for name in ("bull", "bear", "chop"):
        share = round(regimes["shares"][name] * 100)
        assert f"{name} {share}% of bars, {regimes['trades'][name]} trade" in card, card
