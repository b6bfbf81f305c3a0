"""Funding carry, simple vs composite side by side: the service, the API and the page."""

from __future__ import annotations

import json

import numpy as np
import pytest

from apps.lab.carry_compare import MAX_POINTS, carry_compare_run, downsample
from apps.market.models import Dataset
from apps.market.selectors import dataset_market_data
from backtestlab.engine.metrics import compute
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs

pytestmark = pytest.mark.django_db

URL = "/api/carry/compare"
PAGE = "/lab/carry/compare/"
ACTIVE = {"min_funding_rate": 0.0002, "entry_threshold": 0.45}


def post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def test_downsampling_keeps_the_ends_and_the_cap():
    ts = np.arange(8760)
    t, v = downsample(ts, ts * 2.0)
    assert len(t) <= MAX_POINTS and t[0] == 0 and t[-1] == 8759 and v[-1] == 8759 * 2.0
    t, v = downsample(ts[:10], ts[:10] * 1.0)
    assert t == list(range(10))


def test_the_service_runs_both_modes_on_the_same_data(datasets):
    ds = datasets[0]
    out = carry_compare_run(dataset_id=ds.id, params=ACTIVE, date_from="2023-01-10")
    assert [r["strategy_mode"] for r in out["results"]] == ["simple", "composite"]
    funding = Dataset.objects.get(kind="funding", symbol=ds.symbol)
    assert out["funding_dataset"]["id"] == funding.id
    start = 1673308800  # 2023-01-10
    candles = dataset_market_data(ds).slice_time(start, None)
    carry = get_strategy("funding_carry")
    ctx = carry.prepare(candles, {"funding": dataset_market_data(funding).slice_time(start, None)})
    for r in out["results"]:
        res = carry.run(ctx, {**ACTIVE, "strategy_mode": r["strategy_mode"]}, Costs())
        assert r["metrics"]["total_return_pct"] == compute(res).total_return_pct
        assert r["equity"]["equity"][-1] == res.equity[-1]
        assert r["equity"]["ts"][0] == start
        assert len(r["equity"]["ts"]) == len(r["equity"]["equity"]) <= MAX_POINTS
    assert out["results"][0]["params"]["min_funding_rate"] == 0.0002


def test_the_api_returns_both_metric_sets_and_curves(client, alice, datasets):
    client.force_login(alice)
    resp = post(client, {"dataset": datasets[0].id, "params": ACTIVE})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["ok"] is True and len(body["results"]) == 2
    # the service's answer (its numbers are checked against the engine above), as JSON
    service = carry_compare_run(dataset_id=datasets[0].id, params=ACTIVE)
    for r, s in zip(body["results"], service["results"], strict=True):
        assert r["strategy_mode"] == s["strategy_mode"]
        assert r["metrics"].keys() == s["metrics"].keys()
        for name, value in s["metrics"].items():  # None: undefined (e.g. no losing trade)
            assert r["metrics"][name] == (None if value is None else pytest.approx(value)), name
        assert set(r["metrics"]) >= {"sharpe", "total_return_pct", "n_trades"}
        assert r["equity"]["ts"] == s["equity"]["ts"]
        assert r["equity"]["equity"] == pytest.approx(s["equity"]["equity"], rel=1e-12)
        assert 0 < len(r["equity"]["ts"]) <= MAX_POINTS
    assert body["results"][0]["metrics"] != body["results"][1]["metrics"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "dataset", "dataset is required"),
        ({"dataset": "x"}, "dataset", "integer"),
        ({"dataset": 999999}, "dataset", "does not exist"),
        ({"dataset": "ENV"}, "dataset", "holds environment"),
        ({"dataset": "DS", "params": {"min_funding_rte": 0.1}}, "params.min_funding_rte",
         "did you mean 'min_funding_rate'"),
        ({"dataset": "DS", "params": {"strategy_mode": "simple"}}, "params.strategy_mode",
         "both are run"),
        ({"dataset": "DS", "params": {"entry_threshold": 3}}, "params.entry_threshold",
         "between 0 and 1"),
        ({"dataset": "DS", "params": [1]}, "params", "must be an object"),
        ({"dataset": "DS", "date_from": "2023-02-01", "date_to": "2023-01-01"}, "date_from",
         "before"),
        ({"dataset": "DS", "date_from": "yesterday"}, "date_from", "ISO-8601"),
        ({"dataset": "DS", "date_from": "2030-01-01"}, "date_from", "candle(s)"),
        ({"dataset": "DS", "costs": {"commission_pct": -1}}, "costs.commission_pct", "between"),
        ({"dataset": "DS", "colour": "red"}, "colour", "unknown field"),
    ],
)  # fmt: skip
def test_api_errors_name_the_field(client, alice, datasets, body, field, message):
    client.force_login(alice)
    env = Dataset.objects.get(kind="environment", symbol="BTC")
    ids = {"DS": datasets[0].id, "ENV": env.id}
    body = {k: ids.get(v, v) if k == "dataset" else v for k, v in body.items()}
    resp = post(client, body)
    assert resp.status_code == 400, resp.content
    err = resp.json()
    assert err["ok"] is False and err["field"] == field and message in err["error"], err


def test_the_api_requires_login(client, datasets):
    resp = post(client, {"dataset": datasets[0].id})
    assert resp.status_code == 403  # session auth: no WWW-Authenticate challenge, so 403
    assert resp.json() == {"ok": False, "error": "Authentication credentials were not provided."}


def test_the_endpoint_is_in_the_openapi_schema(client, alice):
    client.force_login(alice)
    schema = client.get("/api/schema/", {"format": "json"}).json()
    op = schema["paths"]["/api/carry/compare"]["post"]
    assert op["operationId"] == "carry_compare"
    assert "400" in op["responses"]


def test_the_page_requires_login(client):
    resp = client.get(PAGE)
    assert resp.status_code == 302 and resp["Location"] == f"/accounts/login/?next={PAGE}"


def test_the_page_offers_candle_datasets_and_is_linked(client, alice, datasets):
    client.force_login(alice)
    html = client.get(PAGE).content.decode()
    assert 'id="carry-compare-form"' in html and 'id="nav-carry-compare"' in html
    for ds in datasets:
        assert f'value="{ds.id}"' in html
    assert "environment synthetic" not in html


def test_one_click_shows_both_curves_and_metric_rows(client, alice, datasets):
    client.force_login(alice)
    form = {
        "dataset": datasets[0].id,
        "min_funding_rate": "0.0002",
        "entry_threshold": "0.45",
        "exit_funding_rate": "",
        "exit_threshold": "",
        "date_from": "",
        "date_to": "",
    }
    resp = client.post(PAGE, form, HTTP_HX_REQUEST="true")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "<html" not in html  # the fragment
    assert 'class="equity-simple"' in html and 'class="equity-composite"' in html
    assert html.count("<polyline") == 2
    assert 'id="carry-compare-metrics"' in html and "Sharpe ratio" in html
    full = client.post(PAGE, form)
    assert full.status_code == 200 and "<html" in full.content.decode()
    assert 'class="equity-simple"' in full.content.decode()


def test_a_bad_page_input_shows_the_error(client, alice, datasets):
    client.force_login(alice)
    resp = client.post(
        PAGE, {"dataset": datasets[0].id, "entry_threshold": "7"}, HTTP_HX_REQUEST="true"
    )
    assert resp.status_code == 400
    assert "entry_threshold must be between 0 and 1" in resp.content.decode()
