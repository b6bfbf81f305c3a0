"""Robust best: every run's neighbourhood (itself and its one-step grid neighbours) scored by
its worst and mean objective; the best table ranks by it on request, so a lone peak next to
a cliff is not the first thing an operator applies."""

import math

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.optimization.models import OptimizationRun
from apps.optimization.selectors.heatmap import heatmap_options, job_heatmap
from apps.optimization.selectors.neighbourhood import (
    dataset_neighbourhood,
    job_robust_runs,
    runs_neighbourhood,
)
from apps.strategies.selectors.best_table import job_best_table
from apps.strategies.services.approval import job_evaluate
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


def test_the_approval_gate_scores_the_runs_neighbourhood_over_ranked_runs(alice, datasets):
    def few_trades_at_6(d, gi, params):
        return {"sharpe": SHARPE[gi], "n_trades": 0 if gi == 6 else 100}

    job = job_with_runs(alice, datasets[:1], few_trades_at_6, min_trades=30)
    run = OptimizationRun.objects.get(job=job, grid_index=2)  # the lone peak, 3.0
    job.best_run = run
    job.save()
    approval = job_evaluate(job=job, trigger="page", user=alice)
    assert approval.run_id == run.id
    gate = approval.gates["param_sensitivity"]
    # gi 6 (no trade) is a cliff worth the grid's worst ranked value, -1.0 (gi 3):
    # neighbours of gi 2 are gi 6 (-1.0), gi 0 (0.1), gi 3 (-1.0)
    assert gate["neighbourhood_worst"] == pytest.approx(-1.0)
    assert gate["neighbourhood_mean"] == pytest.approx((3.0 - 1.0 + 0.1 - 1.0) / 4)
    assert gate["neighbour_mean"] == pytest.approx((-1.0 + 0.1 - 1.0) / 3)
    assert gate["ok"] is False  # a 163 % drop


def test_the_heatmap_shows_the_neighbourhood_view(peak_job, alice):
    options = heatmap_options(
        peak_job, {"x": "slow", "y": "fast", "agg": "max", "view": "neighbourhood"}
    )
    hm = job_heatmap(job=peak_job, options=options)
    # each run's neighbourhood worst (worked by hand from SHARPE), the max over sl_pct
    values = [c["value"] for row in hm.cells for c in row]
    assert values == pytest.approx([0.1, -1.0, 0.2, -2.0, 1.3, 1.2])  # rows fast 5, 10, 20
    assert (hm.best["xi"], hm.best["yi"]) == (0, 2)  # fast 20, slow 30: the plateau
    assert hm.metric_label == "Neighbourhood worst Sharpe ratio"
    assert hm.as_dict()["query"]["view"] == "neighbourhood"
    with pytest.raises(ApplicationError, match="scores the job's objective \\(sharpe\\)"):
        heatmap_options(peak_job, {"view": "neighbourhood", "metric": "win_rate"})
    with pytest.raises(ApplicationError, match="view must be one of metric, neighbourhood"):
        heatmap_options(peak_job, {"view": "lucky"})
    client = Client()
    client.force_login(alice)
    page = client.get(
        f"/lab/jobs/{peak_job.id}/heatmap/?x=slow&y=fast&view=neighbourhood&metric=win_rate"
    ).content.decode()  # the page's metric select is overridden: the objective
    assert "Neighbourhood worst Sharpe ratio by fast vs slow" in page and "1.30*" in page
    api = APIClient()
    api.force_authenticate(alice)
    body = api.get(f"/api/jobs/{peak_job.id}/heatmap/?x=slow&y=fast&view=neighbourhood").json()
    assert body["view"] == "neighbourhood" and body["best"]["value"] == pytest.approx(1.3)


def test_the_rows_neighbourhood_is_the_grids(alice, datasets):
    """The best table scores its few rows with two small queries: the same numbers as the
    whole grid's scores, cliffs and unrankable runs included."""

    def mixed(d, gi, params):
        return {"sharpe": None if gi == 3 else SHARPE[gi], "n_trades": 0 if gi == 6 else 100}

    job = job_with_runs(alice, datasets[:1], mixed, min_trades=30)
    runs = list(OptimizationRun.objects.filter(job=job).order_by("grid_index"))
    rows = runs_neighbourhood(job, runs)
    worst, mean = dataset_neighbourhood(job, datasets[0].id)
    for run in runs:
        got = rows[run.id]
        if run.grid_index in (3, 6):  # undefined, too few trades: no score
            assert math.isnan(got[0]) and math.isnan(got[1])
        else:
            assert got == pytest.approx((worst[run.grid_index], mean[run.grid_index]))
