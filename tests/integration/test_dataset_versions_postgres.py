"""On PostgreSQL: re-importing a dataset a job used adds a version; every stored run and its
recomputed detail page stay as they were; a used companion cannot be deleted."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from django.db.models import ProtectedError
from django.test import Client

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import OptimizationRun
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db(transaction=True)


def write_candles(path, seed: int, n: int = 24 * 60):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    pd.DataFrame(
        {
            "ts": 1_704_067_200 + 3600 * np.arange(n),
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": 1.0,
        }
    ).to_csv(path, index=False)
    return str(path)


def page(client, job, run) -> bytes:
    """The run page without its per-request CSRF tokens."""
    html = client.get(f"/lab/jobs/{job.id}/runs/{run.id}/").content
    return re.sub(
        rb'(csrf-token" content="|"X-CSRFToken": "|value=")[A-Za-z0-9]{32,}', rb"\\1", html
    )


def test_a_reimport_leaves_every_stored_run_and_its_page_unchanged(tmp_path, alice, settings):
    settings.DATASET_DIR = tmp_path / "datasets"
    call_command("import_candles", write_candles(tmp_path / "a.csv", 1), symbol="BTC",
                 name="BTC desk")  # fmt: skip
    first = Dataset.objects.get(name="BTC desk")
    job = make_job(alice, [first], grid={"fast": [5, 10], "slow": [30, 60], "sl_pct": [2.0]})
    run_all_chunks(job)
    runs = list(OptimizationRun.objects.filter(job=job).order_by("id"))
    client = Client()
    client.force_login(alice)
    pages = {r.id: page(client, job, r) for r in runs}
    assert all(b"Sharpe" in page for page in pages.values())

    call_command("import_candles", write_candles(tmp_path / "b.csv", 2), symbol="BTC",
                 name="BTC desk", replace=True)  # fmt: skip
    assert Dataset.objects.get(name="BTC desk v2").supersedes_id == first.id
    after = list(OptimizationRun.objects.filter(job=job).order_by("id"))
    assert [(r.dataset_id, r.sharpe, r.n_trades) for r in after] == [
        (r.dataset_id, r.sharpe, r.n_trades) for r in runs
    ]
    for r in after:
        assert page(client, job, r) == pages[r.id]


def test_deleting_a_companion_a_job_used_is_refused_naming_the_job(alice, settings, tmp_path):
    settings.DATASET_DIR = tmp_path / "datasets"
    synthetic_universe_create(symbols=("BTC",), days=30, timeframes=("1h",))
    candles = Dataset.objects.get(kind="candles", symbol="BTC")
    job = make_job(alice, [candles], grid={"strategy_mode": ["simple"]}, strategy="funding_carry")
    funding = Dataset.objects.get(kind="funding", symbol="BTC")
    with pytest.raises(ProtectedError) as err:
        funding.delete()
    assert any(f"job {job.id} ({job.name})" in str(o) for o in err.value.protected_objects)
