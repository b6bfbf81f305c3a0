"""Robust best: every run's neighbourhood (itself and its one-step grid neighbours) scored by
its worst and mean objective; the best table ranks by it on request, so a lone peak next to
a cliff is not the first thing an operator applies."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.optimization.models import OptimizationRun
from apps.optimization.selectors.neighbourhood import job_robust_runs
from apps.strategies.selectors.best_table import job_best_table
from backtestlab.errors import ApplicationError
from tests.results_data import job_with_runs

pytestmark = pytest.mark.django_db

# grid_index = 4 * fast + 2 * slow + sl over fast [5, 10, 20] × slow [30, 60] × sl_pct [1, 2]
SHARPE = [0.1, 0.2, 3.0, -1.0, 1.5, 1.6, -2.0, 1.4, 1.7, 1.8, 1.2, 1.3]
# Worked by hand (itself, fast ± 1, slow ± 1, sl ± 1):
#   gi 2 (the raw best, 3.0) has gi 6 (-2.0) next door: worst -2.0
#   gi 9: 1.8, 1.6 (gi 5), 1.3 (gi 11), 1.7 (gi 8) -> worst 1.3, mean 1.6
#   gi 8: 1.7, 1.5 (gi 4), 1.2 (gi 10), 1.8 (gi 9) -> worst 1.2, mean 1.55
#   gi 11: 1.3, 1.4 (gi 7), 1.8 (gi 9), 1.2 (gi 10) -> worst 1.2, mean 1.425


def sharpe(d, gi, params):
    return {"sharpe": SHARPE[gi]}


@pytest.fixture
def peak_job(alice, datasets):
    return job_with_runs(alice, datasets[:1], sharpe)


def gi_of(runs):
    return [r.grid_index for r in runs]


def test_the_robust_order_puts_the_plateau_before_the_lone_peak(peak_job, datasets):
    robust = job_robust_runs(job=peak_job, limit=4, dataset_id=datasets[0].id)
    assert gi_of(robust) == [9, 8, 11, 5]
    assert robust[0].neighbour_worst == pytest.approx(1.3)
    assert robust[0].neighbour_mean == pytest.approx(1.6)
    assert (robust[1].neighbour_mean, robust[2].neighbour_mean) == pytest.approx((1.55, 1.425))
    (section,) = job_best_table(job=peak_job, limit=3)
    assert [row["run"].grid_index for row in section["rows"]] == [2, 9, 8]  # the raw order
    assert section["rows"][0]["neighbour_worst"] == pytest.approx(-2.0)
    (section,) = job_best_table(job=peak_job, limit=3, rank="robust")
    assert [row["run"].grid_index for row in section["rows"]] == [9, 8, 11]
    with pytest.raises(ApplicationError, match="rank must be one of objective, robust"):
        job_best_table(job=peak_job, rank="lucky")


def test_a_neighbour_that_may_not_be_ranked_is_a_cliff(alice, datasets):
    def few_trades_at_11(d, gi, params):
        return {"sharpe": SHARPE[gi], "n_trades": 0 if gi == 11 else 100}

    job = job_with_runs(alice, datasets[:1], few_trades_at_11)
    robust = job_robust_runs(job=job, limit=2, dataset_id=datasets[0].id)
    # gi 9 now has a cliff (gi 11: no trade, counts as the grid's worst, -2.0) next door
    # gi 8 keeps 1.2; next gi 5: 1.6, 0.2 (gi 1), 1.8 (gi 9), 1.4 (gi 7), 1.5 (gi 4)
    assert gi_of(robust) == [8, 5]
    assert robust[0].neighbour_worst == pytest.approx(1.2)
    assert 11 not in gi_of(job_robust_runs(job=job, limit=12, dataset_id=datasets[0].id))


def test_the_page_and_the_api_rank_by_neighbourhood_on_request(peak_job, alice):
    client = Client()
    client.force_login(alice)
    page = client.get(f"/lab/jobs/{peak_job.id}/?rank=robust").content.decode()
    start = page.index('id="best-table"')
    table = page[start : page.index("</table>", start)]
    first = OptimizationRun.objects.get(job=peak_job, grid_index=9)
    assert table.index(f">{first.id}</a>") < table.index("</tr>", table.index("<tbody>"))
    assert 'id="rank-objective"' in page and "1.3000 / 1.6000" in table
    page = client.get(f"/lab/jobs/{peak_job.id}/").content.decode()
    assert 'id="rank-robust"' in page
    api = APIClient()
    api.force_authenticate(alice)
    body = api.get(f"/api/jobs/{peak_job.id}/best/?rank=robust&limit=2").json()
    assert body["rank"] == "robust"
    rows = body["table"][0]["runs"]
    assert [r["grid_index"] for r in rows] == [9, 8]
    assert rows[0]["neighbour_worst"] == pytest.approx(1.3)
    assert [r["grid_index"] for r in body["best"]] == [2, 9]  # "best" stays the objective's
    bad = api.get(f"/api/jobs/{peak_job.id}/best/?rank=lucky")
    assert bad.status_code == 400 and bad.json()["field"] == "rank"
