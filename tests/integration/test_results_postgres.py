"""The heatmap's SQL on PostgreSQL: integer grid arithmetic and percentile_cont medians give
the same golden cells as on SQLite."""

import pytest

from apps.optimization.selectors.heatmap import heatmap_options, job_heatmap
from tests.results_data import job_with_runs

pytestmark = pytest.mark.django_db


def metrics(d, gi, params):
    f, s, sl = gi // 4, (gi // 2) % 2, gi % 2
    return {"win_rate": float(10 * f + 3 * s + sl) if gi != 1 else None}


@pytest.mark.parametrize(
    "agg, expected",
    [
        ("max", [[0, 4], [11, 14], [21, 24]]),
        ("mean", [[0, 3.5], [10.5, 13.5], [20.5, 23.5]]),
        ("median", [[0, 3.5], [10.5, 13.5], [20.5, 23.5]]),
    ],
)
def test_heatmap_cells_on_postgresql(alice, datasets, agg, expected):
    job = job_with_runs(alice, datasets[:1], metrics, objective="win_rate")
    options = heatmap_options(job, {"x": "slow", "y": "fast", "agg": agg})
    hm = job_heatmap(job=job, options=options)
    assert [[c["value"] for c in row] for row in hm.cells] == expected
    assert [[c["runs"] for c in row] for row in hm.cells] == [[2, 2]] * 3
