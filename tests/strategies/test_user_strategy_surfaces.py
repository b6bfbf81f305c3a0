"""A team's strategy (the examples package, registered through its entry points) on every
surface: launch form, job and template admin, API; and the look-ahead / warm-up check passes
every registered strategy (what CI runs for each of them)."""

import pytest
from django.utils.html import escape

from apps.strategies.services.checks import strategy_check
from backtestlab.engine.strategies import STRATEGIES, load_strategies

load_strategies()
REGISTERED = sorted(
    key
    for key, s in STRATEGIES.items()
    if type(s).__module__.startswith(("backtestlab.engine.strategies.", "backtestlab_examples."))
)


def test_the_registry_holds_the_built_ins_and_the_examples():
    assert REGISTERED == [
        "bollinger_breakout", "funding_carry", "market_state", "options_selector",
        "rsi_reversion", "sma_cross", "smc_zones",
    ]  # fmt: skip


@pytest.mark.django_db
def test_the_launch_form_lists_it_with_its_parameter_space(client, alice):
    client.force_login(alice)
    html = client.get("/lab/jobs/new/").content.decode()
    assert 'value="rsi_reversion"' in html and escape("RSI mean reversion (example)") in html
    params = client.get("/lab/jobs/new/?strategy=rsi_reversion").content.decode()
    for name in ("period", "oversold", "exit_level", "sl_pct", "size_pct"):
        assert f'name="p_{name}"' in params


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/admin/optimization/optimizationjob/add/", "/admin/optimization/jobtemplate/add/"]
)
def test_the_admin_forms_offer_it(admin_client, url):
    html = admin_client.get(url).content.decode()
    assert '<option value="rsi_reversion">' in html
    assert '<option value="bollinger_breakout">' in html


@pytest.mark.django_db
@pytest.mark.parametrize("key", REGISTERED)
def test_every_registered_strategy_passes_its_checks(key):
    result, what = strategy_check(STRATEGIES[key])
    assert result.passed, "\n".join([what, *result.lines()])
    assert result.lookahead.comparisons > 0 and result.warmup.comparisons > 0
