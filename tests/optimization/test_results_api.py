"""REST API of results: heatmap, sensitivity, best with production, run detail, compare,
export; owner and colleague see, outsider 404; bad query parameters 400 in the one shape."""

import json

import pytest
from django.http import StreamingHttpResponse
from rest_framework.test import APIClient

from apps.strategies.models import StrategyConfig
from tests.factories import make_job, run_all_chunks
from tests.results_data import SEED_GRID, SEED_WIN_RATE, job_with_runs, seed_metrics

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def seed_job(alice, datasets):
    return job_with_runs(
        alice, datasets, seed_metrics, grid=SEED_GRID, strategy="smc_zones", objective="win_rate"
    )


@pytest.fixture
def finished_job(alice, datasets):
    job = make_job(alice, datasets[:1], objective="total_return_pct")
    run_all_chunks(job)
    return job


def test_the_heatmap_as_json(alice, bob, seed_job, datasets):
    url = f"/api/jobs/{seed_job.id}/heatmap/?group=imbalance&dataset={datasets[0].id}"
    for user in (alice, bob):
        body = client_for(user).get(url).json()
        assert body["x"] == {"name": "sl_buffer_pct", "values": [5.0, 10.0, 15.0, 20.0]}
        assert body["y"]["name"] == "rr_target" and body["metric"] == "win_rate"
        assert [[c["value"] for c in row] for row in body["cells"]] == SEED_WIN_RATE
        assert body["best"]["value"] == 55 and (body["best"]["y"], body["best"]["x"]) == (2, 10)
        assert body["slice"]["group"] == "imbalance" and body["slice"]["symbol"] == "BTC"
        assert body["aggregated"] == ["entry_method", "tp_method", "min_zone_pct", "use_overlap"]


def test_heatmap_fixed_values_and_aggregation(alice, seed_job, datasets):
    body = (
        client_for(alice)
        .get(
            f"/api/jobs/{seed_job.id}/heatmap/",
            {
                "x": "rr_target",
                "y": "pattern_type",
                "agg": "mean",
                "fixed.sl_buffer_pct": "10",
                "dataset": datasets[1].id,
            },
        )  # fmt: skip
        .json()
    )
    assert [[c["value"] for c in row] for row in body["cells"]] == [
        [52, 55, 48, 42], [48, 45, 52, 58],
    ]  # fmt: skip
    assert body["fixed"] == {"sl_buffer_pct": 10.0} and body["query"]["fixed.sl_buffer_pct"] == "10"


@pytest.mark.parametrize(
    "query, field",
    [("x=zzz", "x"), ("agg=sum", "agg"), ("metric=pnl", "metric"), ("group=fvg", "group"),
     ("fixed.rr_target=9", "fixed.rr_target"), ("bogus=1", "bogus")],
)  # fmt: skip
def test_bad_heatmap_parameters_are_400_naming_what_is_allowed(alice, seed_job, query, field):
    response = client_for(alice).get(f"/api/jobs/{seed_job.id}/heatmap/?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False and body["field"] == field and body["error"]


def test_outsiders_get_404_on_every_results_endpoint(charlie, finished_job):
    run = finished_job.runs.first()
    client = client_for(charlie)
    for url in (
        f"/api/jobs/{finished_job.id}/heatmap/",
        f"/api/jobs/{finished_job.id}/sensitivity/",
        f"/api/jobs/{finished_job.id}/best/",
        f"/api/jobs/{finished_job.id}/export/?format=csv",
        f"/api/jobs/{finished_job.id}/export/?format=json",
        f"/api/runs/{run.id}/detail/",
        f"/api/jobs/compare/?ids={finished_job.id},{finished_job.id}0",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["ok"] is False


def test_sensitivity_as_json(alice, seed_job):
    body = client_for(alice).get(f"/api/jobs/{seed_job.id}/sensitivity/").json()
    assert body["metric"] == "win_rate" and body["run"]["value"] == 72
    names = [p["name"] for p in body["parameters"]]
    assert names == ["pattern_type", "rr_target", "sl_buffer_pct"]
    bad = client_for(alice).get(f"/api/jobs/{seed_job.id}/sensitivity/?run=abc")
    assert bad.status_code == 400 and bad.json()["field"] == "run"


def test_best_carries_the_production_comparison(alice, finished_job):
    # Production = one of the sweep's own points (rr takes its default, 2.0): its value on the
    # same data is that run's stored value, and the improvement is measured against it.
    StrategyConfig.objects.create(
        strategy="sma_cross", symbol="BTC", timeframe="1h", version=1,
        params={"fast": 5, "slow": 60, "sl_pct": 1.0},
    )  # fmt: skip
    same = finished_job.runs.get(params={"fast": 5, "slow": 60, "sl_pct": 1.0, "rr": 2.0})
    baseline = same.total_return_pct
    body = client_for(alice).get(f"/api/jobs/{finished_job.id}/best/?limit=3").json()
    (section,) = body["table"]
    assert section["symbol"] == "BTC" and section["group"] == ""
    assert section["production"]["version"] == 1 and section["production"]["params"]["fast"] == 5
    assert section["production"]["value"] == pytest.approx(baseline, rel=1e-12)
    top3 = list(finished_job.runs.order_by("-total_return_pct", "id")[:3])
    assert [r["id"] for r in section["runs"]] == [r.id for r in top3]
    assert [r["improvement_pct"] for r in section["runs"]] == pytest.approx(
        [100 * (r.total_return_pct - baseline) / abs(baseline) for r in top3], rel=1e-9
    )
    assert body["best"][0]["id"] == section["runs"][0]["id"]


def test_run_detail_as_json(alice, bob, finished_job):
    run = finished_job.runs.order_by("-n_trades").first()
    for user in (alice, bob):
        body = client_for(user).get(f"/api/runs/{run.id}/detail/?points=200").json()
        assert body["run"] == run.id and len(body["curve"]["time"]) <= 200
        assert len(body["trades"]) == run.n_trades
        assert body["metrics"]["n_trades"] == run.n_trades
    bad = client_for(alice).get(f"/api/runs/{run.id}/detail/?points=5")
    assert bad.status_code == 400 and bad.json()["field"] == "points"


def test_compare_as_json(alice, finished_job, seed_job):
    body = client_for(alice).get(f"/api/jobs/compare/?ids={finished_job.id},{seed_job.id}").json()
    assert [e["id"] for e in body] == [finished_job.id, seed_job.id]
    assert body[0]["best_run"]["id"] == finished_job.best_run_id
    # the curve is the best run's equity in % of the start: it ends at its total return
    curve = body[0]["curve"]["return_pct"]
    assert curve[0] == 0.0
    assert curve[-1] == pytest.approx(finished_job.best_run.total_return_pct, rel=1e-9)
    one = client_for(alice).get(f"/api/jobs/compare/?ids={finished_job.id}")
    assert one.status_code == 400 and one.json()["field"] == "ids"
    five = client_for(alice).get("/api/jobs/compare/?ids=1,2,3,4,5")
    assert five.status_code == 400 and "2 to 4" in five.json()["error"]


def test_export_streams_csv_and_json(alice, datasets):
    grid = {"fast": list(range(2, 42)), "slow": list(range(60, 110)), "sl_pct": [1.0, 2.0]}
    job = job_with_runs(alice, datasets[:1], lambda d, gi, p: {"sharpe": gi / 1000}, grid=grid)
    client = client_for(alice)
    csv_response = client.get(f"/api/jobs/{job.id}/export/?format=csv")
    assert isinstance(csv_response, StreamingHttpResponse)
    lines = b"".join(csv_response.streaming_content).decode().splitlines()
    assert len(lines) == 1 + 4000
    json_response = client.get(f"/api/jobs/{job.id}/export/?format=json")
    assert isinstance(json_response, StreamingHttpResponse)
    rows = json.loads(b"".join(json_response.streaming_content))
    assert len(rows) == 4000 and rows[-1]["params"] == {"fast": 41, "slow": 109, "sl_pct": 2.0,
                                                        "rr": 2.0}  # fmt: skip
    assert rows[1]["sharpe"] == 0.001
    bad = client.get(f"/api/jobs/{job.id}/export/?format=xml")
    assert bad.status_code == 400 and bad.json() == {
        "ok": False, "error": "format must be one of csv, json; got 'xml'", "field": "format",
    }  # fmt: skip
