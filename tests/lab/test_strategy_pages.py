"""The strategies list and the strategy page's parameter space and look-ahead check."""

import pytest
from django.utils.html import escape

from backtestlab.engine.strategies import STRATEGIES, load_strategies

pytestmark = pytest.mark.django_db


def test_the_list_shows_every_registered_strategy_with_its_origin(client, alice):
    load_strategies()
    client.force_login(alice)
    r = client.get("/lab/strategies/")
    assert r.status_code == 200
    html = r.content.decode()
    for key, s in STRATEGIES.items():
        assert f'id="strategy-{key}"' in html and escape(s.label) in html
    assert "backtestlab_examples.rsi_reversion" in html  # a team's own, from its package
    assert html.count(">built-in<") == 5
    assert 'id="nav-strategies"' in html


def test_the_page_lists_parameters_roles_constraints_and_warmup(client, alice):
    client.force_login(alice)
    html = client.get("/lab/strategies/sma_cross/").content.decode()
    assert "<code>sl_pct</code>" in html and "stop / target only" in html
    assert "<code>fast &lt; slow</code>" in html
    assert "Warm-up at the defaults: <strong>50 bars</strong>" in html
    carry = client.get("/lab/strategies/funding_carry/").content.decode()
    assert "Warm-up at the defaults: <strong>1,008 h of history (42.0 days)</strong>" in carry


def test_the_check_button_runs_both_checks_and_shows_the_verdict(client, alice, datasets):
    client.force_login(alice)
    r = client.post("/lab/strategies/sma_cross/check/", {"dataset": str(datasets[0].id)})
    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="check-result"' in html and ">PASS<" in html
    assert f"dataset {datasets[0].id}" in html
    assert "no signal or equity at or before the cut changed" in html


def test_a_bad_dataset_is_a_clear_400(client, alice):
    client.force_login(alice)
    r = client.post("/lab/strategies/sma_cross/check/", {"dataset": "abc"})
    assert r.status_code == 400
    assert "dataset must be a dataset id from the list" in r.content.decode()
    r = client.post("/lab/strategies/sma_cross/check/", {"dataset": "999999"})
    assert r.status_code == 400 and "dataset 999999 does not exist" in r.content.decode()
    assert client.post("/lab/strategies/nope/check/").status_code == 404
