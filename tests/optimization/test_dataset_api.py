"""POST /api/datasets/ (multipart upload, any format import_candles takes) and the dataset
detail's gap report and jobs."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from apps.market.models import Dataset
from tests.factories import make_job

pytestmark = pytest.mark.django_db

START = 1_704_067_200


@pytest.fixture(autouse=True)
def private_dataset_dir(settings, tmp_path):
    settings.DATASET_DIR = tmp_path / "datasets"


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def importer(alice):
    alice.user_permissions.add(Permission.objects.get(codename="add_dataset"))
    return type(alice).objects.get(pk=alice.pk)  # fresh permission cache


def csv_upload(n=200, drop=(), name="desk.csv") -> io.BytesIO:
    rng = np.random.default_rng(4)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "timestamp": START + 3600 * np.arange(n),
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": 1.0,
        }
    ).drop(index=list(drop))
    buf = io.BytesIO(frame.to_csv(index=False).encode())
    buf.name = name
    return buf


def test_an_upload_lands_as_a_dataset_with_its_gap_report(importer):
    r = api(importer).post(
        "/api/datasets/", {"file": csv_upload(drop=(50, 51, 52)), "symbol": "btc"},
        format="multipart",
    )  # fmt: skip
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["symbol"], body["timeframe"], body["kind"], body["rows"]) == (
        "BTC",
        "1h",
        "candles",
        197,
    )
    assert body["gaps"] == {
        "step_seconds": 3600, "gaps": 1, "missing_rows": 3,
        "first": [{"after": START + 49 * 3600, "before": START + 53 * 3600, "missing_rows": 3}],
    }  # fmt: skip
    assert Dataset.objects.get(id=body["id"]).version == 1


def test_the_detail_lists_the_jobs_you_may_see(importer, charlie):
    dataset_id = (
        api(importer)
        .post("/api/datasets/", {"file": csv_upload(), "symbol": "BTC"}, format="multipart")
        .json()["id"]
    )
    dataset = Dataset.objects.get(id=dataset_id)
    job = make_job(importer, [dataset], grid={"fast": [5], "slow": [20]})
    mine = api(importer).get(f"/api/datasets/{dataset_id}/").json()
    assert [j["id"] for j in mine["jobs"]] == [job.id]
    assert mine["gaps"]["gaps"] == 0 and mine["checksum"] == dataset.checksum
    assert api(charlie).get(f"/api/datasets/{dataset_id}/").json()["jobs"] == []


def test_an_upload_needs_the_permission_and_writes_nothing_without_it(charlie):
    r = api(charlie).post(
        "/api/datasets/", {"file": csv_upload(), "symbol": "BTC"}, format="multipart"
    )
    assert r.status_code == 403
    assert "needs the 'Can add dataset' permission" in r.json()["error"]
    assert Dataset.objects.count() == 0


def test_a_bad_file_is_a_400_naming_the_row(importer):
    bad = io.BytesIO(
        b"timestamp,open,high,low,close,volume\n1704067200,1,1,1,1,1\n1704067200,1,1,1,1,1\n"
    )
    bad.name = "bad.csv"
    r = api(importer).post("/api/datasets/", {"file": bad, "symbol": "BTC", "timeframe": "1h"},
                           format="multipart")  # fmt: skip
    assert r.status_code == 400
    assert "row 1, column 'ts': duplicate timestamp" in r.json()["error"]
    assert (
        api(importer).post("/api/datasets/", {"symbol": "BTC"}, format="multipart").status_code
        == 400
    )
    assert Dataset.objects.count() == 0


def test_a_file_over_the_limit_is_a_413(importer, settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "MAX_UPLOAD_MB": 1}
    big = csv_upload(n=30_000)
    assert len(big.getvalue()) > 2**20
    r = api(importer).post("/api/datasets/", {"file": big, "symbol": "BTC"}, format="multipart")
    assert r.status_code == 413
    assert "the limit is 1 MB (BACKTESTLAB_MAX_UPLOAD_MB)" in r.json()["error"], r.json()
    assert Dataset.objects.count() == 0
