"""A stored dataset is never rewritten: re-importing adds a version; jobs keep theirs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from apps.market.models import Dataset
from apps.market.storage import dataset_path, file_sha256
from apps.optimization.gateway import run_backtest
from apps.optimization.models import OptimizationRun
from backtestlab.engine.metrics import compute
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_dataset_dir(settings, tmp_path):
    settings.DATASET_DIR = tmp_path / "datasets"


def write_candles(path: Path, seed: int, n: int = 24 * 60) -> Path:
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
    return path


def test_a_reimport_adds_a_version_and_leaves_the_used_one_and_its_runs_unchanged(tmp_path, alice):
    call_command("import_candles", str(write_candles(tmp_path / "a.csv", 1)), symbol="BTC",
                 name="BTC desk")  # fmt: skip
    first = Dataset.objects.get(name="BTC desk")
    job = make_job(alice, [first], grid={"fast": [5, 10], "slow": [30, 60], "sl_pct": [2.0]})
    run_all_chunks(job)
    stored = {r.id: (r.sharpe, r.n_trades) for r in OptimizationRun.objects.filter(job=job)}
    assert len(stored) == 4 and any(n for _, n in stored.values())

    call_command("import_candles", str(write_candles(tmp_path / "b.csv", 2)), symbol="BTC",
                 name="BTC desk", replace=True)  # fmt: skip
    second = Dataset.objects.get(name="BTC desk v2")
    assert (second.version, second.supersedes_id) == (2, first.id)
    first.refresh_from_db()
    assert first.name == "BTC desk" and first.version == 1
    assert file_sha256(dataset_path(first.file)) == first.checksum  # its file is untouched
    assert second.checksum != first.checksum and second.file != first.file
    assert list(job.datasets.values_list("id", flat=True)) == [first.id]
    for run in OptimizationRun.objects.filter(job=job):
        _, _, _, result = run_backtest(run)
        detail = compute(result)
        assert (run.sharpe, run.n_trades) == stored[run.id]
        assert run.n_trades == detail.n_trades
        assert run.sharpe is None or run.sharpe == pytest.approx(detail.sharpe, rel=1e-12)

    call_command("import_candles", str(write_candles(tmp_path / "c.csv", 3)), symbol="BTC",
                 name="BTC desk", replace=True)  # fmt: skip
    third = Dataset.objects.get(name="BTC desk v3")
    assert (third.version, third.supersedes_id) == (3, second.id)


def test_an_identical_reimport_is_the_same_dataset(tmp_path):
    path = write_candles(tmp_path / "a.csv", 1)
    call_command("import_candles", str(path), symbol="BTC", name="BTC desk")
    call_command("import_candles", str(path), symbol="BTC", name="BTC desk", replace=True)
    assert list(Dataset.objects.values_list("name", "version")) == [("BTC desk", 1)]
    assert len(list(Path(tmp_path / "datasets").rglob("*.parquet"))) == 1


def test_a_name_taken_without_replace_is_refused_and_writes_nothing(tmp_path):
    call_command("import_candles", str(write_candles(tmp_path / "a.csv", 1)), symbol="BTC",
                 name="BTC desk")  # fmt: skip
    with pytest.raises(CommandError, match="exists already; pick another name or pass replace"):
        call_command("import_candles", str(write_candles(tmp_path / "b.csv", 2)), symbol="BTC",
                     name="BTC desk")  # fmt: skip
    assert Dataset.objects.count() == 1
    assert len(list(Path(tmp_path / "datasets").rglob("*.parquet"))) == 1


def test_a_path_outside_the_dataset_dir_is_refused():
    with pytest.raises(ValueError, match="outside DATASET_DIR"):
        dataset_path("../../etc/passwd")
