"""The Datasets page: list, upload with a preview of the first/last rows and the gaps, store."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth.models import Permission

from apps.market.models import Dataset
from tests.factories import make_job

pytestmark = pytest.mark.django_db

START = 1_704_067_200


@pytest.fixture(autouse=True)
def private_dirs(settings, tmp_path):
    settings.DATASET_DIR = tmp_path / "datasets"
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def importer(alice):
    alice.user_permissions.add(Permission.objects.get(codename="add_dataset"))
    return type(alice).objects.get(pk=alice.pk)


def upload(n=120, drop=(30, 31)):
    rng = np.random.default_rng(9)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {"timestamp": START + 3600 * np.arange(n), "open": open_, "high": np.maximum(open_, close),
         "low": np.minimum(open_, close), "close": close, "volume": 2.0}
    ).drop(index=list(drop))  # fmt: skip
    buf = io.BytesIO(frame.to_csv(index=False).encode())
    buf.name = "desk_btc.csv"
    return buf


def test_upload_preview_then_store(client, importer):
    client.force_login(importer)
    r = client.post("/lab/datasets/", {"step": "preview", "file": upload()})
    html = r.content.decode()
    assert r.status_code == 200 and 'id="upload-preview"' in html
    assert "118 rows of candles (csv)" in html
    assert "1 gap, 2 missing rows" in html
    assert "2024-01-01T00:00:00+00:00" in html  # the first row, shown in UTC
    assert Dataset.objects.count() == 0  # nothing stored before the confirmation
    token = html.split('name="token" value="')[1].split('"')[0]
    assert 'id="id_timeframe" name="timeframe" value="1h"' in html  # inferred, editable
    r = client.post(
        "/lab/datasets/", {"step": "save", "token": token, "symbol": "btc", "timeframe": "1h"}
    )
    dataset = Dataset.objects.get()
    assert r.status_code == 302 and f"created={dataset.id}" in r["Location"]
    assert (dataset.symbol, dataset.timeframe, dataset.rows) == ("BTC", "1h", 118)
    assert (dataset.gaps, dataset.missing_rows) == (1, 2)
    job = make_job(importer, [dataset], grid={"fast": [5], "slow": [20]})
    listed = client.get("/lab/datasets/").content.decode()
    row = listed.split(f'id="dataset-{dataset.id}"')[1].split("</tr>")[0]
    assert dataset.checksum[:10] in row and "1 (2 rows missing)" in row
    assert f'<a href="/lab/jobs/{job.id}/">#{job.id}</a>' in row
    again = client.post("/lab/datasets/", {"step": "save", "token": token, "symbol": "BTC"})
    assert again.status_code == 400 and "upload the file again" in again.content.decode()


def test_a_bad_file_or_value_is_explained_and_stores_nothing(client, importer):
    client.force_login(importer)
    bad = io.BytesIO(b"when,open\n1,2\n")
    bad.name = "bad.csv"
    r = client.post("/lab/datasets/", {"step": "preview", "file": bad})
    assert r.status_code == 400 and "no time column" in r.content.decode()
    r = client.post("/lab/datasets/", {"step": "preview", "file": upload()})
    token = r.content.decode().split('name="token" value="')[1].split('"')[0]
    r = client.post("/lab/datasets/", {"step": "save", "token": token, "symbol": "???"})
    assert r.status_code == 400 and "symbol must be 1 to 20 letters or digits" in r.content.decode()
    assert 'name="token" value="' + token in r.content.decode()  # fix the value and retry
    assert Dataset.objects.count() == 0


def test_uploading_needs_the_permission(client, charlie):
    client.force_login(charlie)
    page = client.get("/lab/datasets/").content.decode()
    assert "needs the “Can add dataset” permission" in page and 'id="upload-form"' not in page
    r = client.post("/lab/datasets/", {"step": "preview", "file": upload()})
    assert r.status_code == 403 and Dataset.objects.count() == 0
