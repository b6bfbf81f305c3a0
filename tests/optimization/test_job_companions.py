"""A job reads the companion series fixed when it was created; a used companion cannot be
deleted; a run page whose data file changed says so instead of recomputing something else."""

from __future__ import annotations

import pytest
from django.db.models import ProtectedError

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.market.storage import dataset_path
from apps.optimization.gateway import context_cache_clear, job_companion
from apps.optimization.models import JobCompanion, OptimizationRun
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db

CARRY_GRID = {"strategy_mode": ["simple"], "min_funding_rate": [0.0002, 0.0003]}


@pytest.fixture
def carry_job(alice, settings, tmp_path):
    settings.DATASET_DIR = tmp_path / "datasets"
    synthetic_universe_create(symbols=("BTC",), days=40, timeframes=("1h",))
    candles = Dataset.objects.get(kind="candles", symbol="BTC")
    job = make_job(alice, [candles], grid=CARRY_GRID, strategy="funding_carry")
    run_all_chunks(job)
    return job


def test_the_job_pins_its_funding_and_keeps_reading_it(carry_job):
    funding = Dataset.objects.get(kind="funding", symbol="BTC")
    (pin,) = JobCompanion.objects.filter(job=carry_job)
    assert (pin.kind, pin.companion_id) == ("funding", funding.id)
    # A newer funding series of the symbol (another seed) does not change what the job reads.
    synthetic_universe_create(symbols=("BTC",), days=40, timeframes=("1h",), seed=99)
    candles = carry_job.datasets.get()
    assert job_companion(carry_job, candles, "funding") == funding


def test_a_used_companion_cannot_be_deleted_and_the_refusal_names_the_job(carry_job):
    funding = Dataset.objects.get(kind="funding", symbol="BTC")
    with pytest.raises(ProtectedError) as err:
        funding.delete()
    assert f"job {carry_job.id} ({carry_job.name}) reads it as the funding of" in str(
        [str(o) for o in err.value.protected_objects]
    )
    assert Dataset.objects.filter(id=funding.id).exists()


def test_a_run_page_whose_data_file_changed_says_so(client, alice, carry_job):
    run = OptimizationRun.objects.filter(job=carry_job).first()
    client.force_login(alice)
    ok = client.get(f"/lab/jobs/{carry_job.id}/runs/{run.id}/")
    assert ok.status_code == 200
    assert "checksum <code" in ok.content.decode() and "version 1" in ok.content.decode()
    funding = JobCompanion.objects.get(job=carry_job).companion
    dataset_path(funding.file).write_bytes(b"tampered")
    context_cache_clear()  # as in a fresh process
    r = client.get(f"/lab/jobs/{carry_job.id}/runs/{run.id}/")
    assert r.status_code == 409
    assert "its file changed since it was stored" in r.content.decode()


def test_the_admin_names_the_job_when_refusing_to_delete_a_used_companion(admin_client, carry_job):
    funding = JobCompanion.objects.get(job=carry_job).companion
    html = admin_client.get(f"/admin/market/dataset/{funding.id}/delete/").content.decode()
    assert "Cannot delete dataset" in html
    assert f"job {carry_job.id} ({carry_job.name}) reads it as the funding of" in html
    admin_client.post(f"/admin/market/dataset/{funding.id}/delete/", {"post": "yes"})
    assert Dataset.objects.filter(id=funding.id).exists()
