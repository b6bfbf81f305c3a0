"""Approval, evaluation API, lab pages, admin and the strategy_summary command."""

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils.html import escape
from rest_framework.test import APIClient

from apps.optimization.models import JobStatus, OptimizationJob
from apps.strategies.models import ApprovalConfig, StrategyApproval
from apps.strategies.services import approval as approval_services
from backtestlab.engine.signals import Signals
from backtestlab.engine.strategies import STRATEGIES, register
from backtestlab.engine.strategies.sma_cross import SmaCross
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db

GRID = {"fast": [5, 10], "slow": [30, 60], "sl_pct": [1.0, 2.0], "rr": [2.0]}


@pytest.fixture
def sweep(alice, datasets):
    job = make_job(alice, datasets[:1], grid=GRID)
    run_all_chunks(job)
    return job


@pytest.fixture
def no_trade_job(alice, datasets):
    job = make_job(
        alice, datasets[:1], grid={"fast": [50], "slow": [1999]}, objective="total_return_pct"
    )
    run_all_chunks(job)
    return job


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_an_evaluation_stores_stage_rules_summary_and_config(alice, sweep):
    a = approval_services.job_evaluate(job=sweep, trigger="page", user=alice)
    assert a.stage == "RESEARCH"  # 60 days of data: far below 200 trades / 3 years
    assert a.reason.startswith("Insufficient sample size")
    assert [r["name"] for r in a.rules][:7] == [
        "checks", "min_trades", "min_years", "regimes", "param_sensitivity", "walk_forward",
        "stress_test",
    ]  # fmt: skip
    assert a.gates["checks"]["ok"] is True
    assert a.gates["checks"]["lookahead"].startswith("no signal or equity at or before the cut")
    assert a.config["min_trades"] == 200 and a.config["max_worst_dd_prod"] == 0.25
    assert set(a.gates) >= {"stats", "variance", "psychology", "regimes",
                            "param_sensitivity", "walk_forward", "stress_test"}  # fmt: skip
    assert [s["name"] for s in a.gates["stress_test"]["scenarios"]] == [
        "base", "fees_x2", "slippage_x2", "delay_1", "all",
    ]  # fmt: skip
    assert a.gates["walk_forward"]["computed"]
    assert a.summary["psychology_reachable_range"] == [35.0, 71.25]
    assert a.run_id == sweep.best_run_id and a.created_by == alice


def test_the_config_in_admin_drives_the_stage(alice, sweep):
    ApprovalConfig.objects.create(
        name="lenient", min_trades=1, min_years=0, require_bull_bear_chop=False,
        require_param_sensitivity_ok=False, require_walk_forward_ok=False,
        require_stress_test_ok=False, max_worst_dd_research=1.0, max_worst_dd_pilot=1.0,
        max_worst_dd_prod=1.0, max_loss_streak_pilot=1000, max_loss_streak_prod=1000,
        min_psych_score_pilot=0, min_psych_score_prod=0,
    )  # fmt: skip
    a = approval_services.job_evaluate(job=sweep, trigger="api")
    assert a.stage == "PRODUCTION" and a.config["min_trades"] == 1
    assert a.config_ref.name == "lenient"


class PeekingSma(SmaCross):
    """sma_cross that also needs tomorrow's close to be higher: a one-bar peek."""

    key = "peeking_sma"
    label = "SMA crossover that peeks (tests only)"

    def signals(self, ctx, p):
        sig = super().signals(ctx, p)
        close = ctx.data.close
        tomorrow_up = np.r_[close[1:] > close[:-1], False]
        return Signals(entries=sig.entries & tomorrow_up, exits=sig.exits)


@pytest.fixture
def peeking():
    strategy = register(PeekingSma())
    yield strategy
    STRATEGIES.pop(strategy.key, None)


def test_a_strategy_that_reads_the_future_stays_in_research_whatever_its_numbers(
    alice, datasets, peeking
):
    ApprovalConfig.objects.create(
        name="lenient", min_trades=1, min_years=0, require_bull_bear_chop=False,
        require_param_sensitivity_ok=False, require_walk_forward_ok=False,
        require_stress_test_ok=False, max_worst_dd_research=1.0, max_worst_dd_pilot=1.0,
        max_worst_dd_prod=1.0, max_loss_streak_pilot=1000, max_loss_streak_prod=1000,
        min_psych_score_pilot=0, min_psych_score_prod=0,
    )  # fmt: skip
    job = make_job(alice, datasets[:1], grid=GRID, strategy=peeking.key)
    run_all_chunks(job)
    a = approval_services.job_evaluate(job=job, trigger="page", user=alice)
    assert a.stage == "RESEARCH"
    assert a.reason.startswith("Look-ahead / warm-up check failed")
    assert a.gates["checks"]["ok"] is False
    assert "reads the future" in a.gates["checks"]["lookahead"]


def test_api_evaluation_owner_and_outsider(alice, charlie, sweep):
    url = f"/api/jobs/{sweep.id}/evaluation/"
    assert api(charlie).get(url).status_code == 404
    assert api(charlie).post(url).status_code == 404
    assert StrategyApproval.objects.count() == 0  # the outsider's post evaluated nothing
    r = api(alice).post(url)
    assert r.status_code == 201 and r.json()["approval"]["stage"] == "RESEARCH"
    body = api(alice).get(url).json()
    assert body["approval"]["id"] == r.json()["approval"]["id"]
    assert body["overfitting"]["n_trials"] == 8


def test_api_no_trades_is_a_400_not_a_500(alice, no_trade_job):
    r = api(alice).post(f"/api/jobs/{no_trade_job.id}/evaluation/")
    assert r.status_code == 400
    assert r.json()["ok"] is False and r.json()["error"] == (
        f"job {no_trade_job.id} has no ranked run (each one failed, has fewer than 1 trades or "
        "an undefined total_return_pct), so there is no best run to evaluate"
    )
    run = no_trade_job.runs.get()  # evaluated on purpose: the approval says why it cannot be
    r = api(alice).post("/api/jobs/monte_carlo/", {"run": run.id, "sims": 10}, format="json")
    assert r.status_code == 400 and "no trade" in r.json()["error"]


def test_api_creates_monte_carlo_and_walk_forward_jobs(alice, charlie, sweep):
    run = sweep.best_run
    assert api(charlie).post("/api/jobs/monte_carlo/", {"run": run.id},
                             format="json").status_code == 404  # fmt: skip
    assert not OptimizationJob.objects.filter(kind="monte_carlo").exists()
    r = api(alice).post("/api/jobs/monte_carlo/", {"run": run.id, "sims": 1200, "seed": 3},
                        format="json")  # fmt: skip
    assert r.status_code == 201 and r.json()["kind"] == "monte_carlo"
    job = OptimizationJob.objects.get(id=r.json()["id"])
    run_all_chunks(job)
    body = api(alice).get(f"/api/jobs/{job.id}/evaluation/").json()
    assert body["result"]["profile"]["sims"] == 1200
    assert "returns" not in body["options"]
    r = api(alice).post("/api/jobs/walk_forward/", {"job": sweep.id, "n_splits": 2},
                        format="json")  # fmt: skip
    assert r.status_code == 201 and r.json()["kind"] == "walk_forward"
    r = api(alice).post("/api/jobs/walk_forward/", {"job": sweep.id, "window": "sideways"},
                        format="json")  # fmt: skip
    assert r.status_code == 400 and r.json()["field"] == "window"


def test_api_stress_of_a_run(alice, charlie, sweep):
    url = f"/api/runs/{sweep.best_run_id}/stress/"
    assert api(charlie).post(url).status_code == 404
    body = api(alice).post(url, {"objective": "total_return_pct"}, format="json").json()
    assert body["objective"] == "total_return_pct" and body["run"] == sweep.best_run_id
    values = {s["name"]: s["value"] for s in body["scenarios"]}
    assert list(values) == ["base", "fees_x2", "slippage_x2", "delay_1", "all"]
    base = values["base"]  # the run itself, as stored
    assert base == pytest.approx(sweep.best_run.total_return_pct, rel=1e-9) and base > 0
    assert values["fees_x2"] < base and values["slippage_x2"] < base
    # The verdict follows the active ApprovalConfig: each scenario keeps >= stress_min_fraction
    # of the base, all three together >= stress_min_fraction_combined.
    singles = min(values["fees_x2"], values["slippage_x2"], values["delay_1"]) / base
    combined = values["all"] / base
    defaults = ApprovalConfig()  # the seed's 0.5 and 0.25
    expected = singles >= defaults.stress_min_fraction and (
        combined >= defaults.stress_min_fraction_combined
    )
    assert body["stress_test_ok"] is expected
    ApprovalConfig.objects.create(
        name="just above", stress_min_fraction=singles + 1e-6, stress_min_fraction_combined=0
    )
    assert (
        api(alice)
        .post(url, {"objective": "total_return_pct"}, format="json")
        .json()["stress_test_ok"]
        is False
    )
    ApprovalConfig.objects.create(
        name="just below", stress_min_fraction=singles - 1e-6,
        stress_min_fraction_combined=combined - 1e-6,
    )  # fmt: skip
    assert (
        api(alice)
        .post(url, {"objective": "total_return_pct"}, format="json")
        .json()["stress_test_ok"]
        is True
    )


def test_api_strategy_approval_history(alice, bob, charlie, sweep):
    url = "/api/strategies/sma_cross/approval/"
    r = api(alice).post(url, {"run": sweep.best_run_id}, format="json")
    assert r.status_code == 201
    approval_services.job_evaluate(job=sweep, trigger="command")
    body = api(alice).get(url).json()
    assert body["latest"]["trigger"] == "command" and len(body["history"]) == 2
    assert len(api(bob).get(url).json()["history"]) == 2  # colleague sees the team's
    assert api(charlie).get(url).json()["history"] == []
    assert api(charlie).post(url, {"run": sweep.best_run_id}, format="json").status_code == 404
    assert StrategyApproval.objects.count() == 2  # the outsider's post wrote nothing
    assert api(alice).get("/api/strategies/nope/approval/").status_code == 404
    r = api(alice).post("/api/strategies/smc_zones/approval/", {"run": sweep.best_run_id},
                        format="json")  # fmt: skip
    assert r.status_code == 400 and r.json() == {
        "ok": False, "field": "run",
        "error": f"run {sweep.best_run_id} belongs to strategy sma_cross, not smc_zones",
    }  # fmt: skip
    assert StrategyApproval.objects.count() == 2


def test_job_page_shows_overfitting_and_the_approval_card(client, alice, charlie, sweep):
    client.force_login(alice)
    client.post(f"/lab/jobs/{sweep.id}/evaluate/")
    html = client.get(f"/lab/jobs/{sweep.id}/").content.decode()
    assert 'id="overfitting"' in html and 'id="pbo"' in html and 'id="dsr"' in html
    assert 'id="approval-card"' in html and "RESEARCH" in html
    assert "reachable 35.0–71.25" in html
    # One drawdown and one Sharpe per run: the card's and the DSR line's are the run's own.
    best = sweep.best_run
    approval = StrategyApproval.objects.get()
    assert approval.summary["backtest_max_dd"] == pytest.approx(best.max_drawdown_pct / 100)
    assert f'id="approval-max-dd">{best.max_drawdown_pct:.2f} %' in html
    assert f"best run's Sharpe {best.sharpe:.2f} after 8 trials on this data" in html
    client.force_login(charlie)
    assert client.post(f"/lab/jobs/{sweep.id}/evaluate/").status_code == 404
    assert StrategyApproval.objects.count() == 1  # alice's only


def test_job_page_no_trades_shows_a_clear_error(client, alice, no_trade_job):
    client.force_login(alice)
    r = client.post(f"/lab/jobs/{no_trade_job.id}/evaluate/")
    assert r.status_code == 400
    assert "has no ranked run (each one failed, has fewer than 1 trades" in r.content.decode()


def test_monte_carlo_and_walk_forward_pages(client, alice, sweep):
    client.force_login(alice)
    r = client.post(f"/lab/jobs/{sweep.id}/monte-carlo/", {"sims": "1500"})
    mc = OptimizationJob.objects.get(kind="monte_carlo")
    assert r.status_code == 302 and r.url.endswith(f"/lab/jobs/{mc.id}/")
    run_all_chunks(mc)
    html = client.get(f"/lab/jobs/{mc.id}/").content.decode()
    assert 'id="mc-fan-chart"' in html and 'id="mc-hist-final"' in html
    assert "1500 / 1500 simulations" in html and 'id="best-table"' not in html
    # no run of its own: no (empty) heatmap or sensitivity under the evaluation
    assert 'id="heatmap"' not in html and 'id="sensitivity"' not in html
    client.post(f"/lab/jobs/{sweep.id}/walk-forward/", {"n_splits": "2", "window": "anchored"})
    wf = OptimizationJob.objects.get(kind="walk_forward")
    run_all_chunks(wf)
    assert wf.status == JobStatus.SUCCEEDED
    html = client.get(f"/lab/jobs/{wf.id}/").content.decode()
    assert 'id="wf-folds"' in html and 'id="wf-efficiency"' in html and "anchored" in html
    assert 'id="heatmap"' not in html and 'id="sensitivity"' not in html
    html = client.get(f"/lab/jobs/{sweep.id}/").content.decode()
    assert 'id="heatmap"' in html and 'id="sensitivity"' in html  # a sweep keeps them


def test_strategy_page(client, alice, charlie, sweep):
    client.force_login(alice)
    assert 'id="no-approval"' in client.get("/lab/strategies/sma_cross/").content.decode()
    approval_services.job_evaluate(job=sweep, trigger="page", user=alice)
    approval_services.job_evaluate(job=sweep, trigger="page", user=alice)
    html = client.get("/lab/strategies/sma_cross/").content.decode()
    assert 'id="approval-card"' in html and 'id="approval-history"' in html
    client.force_login(charlie)
    assert 'id="no-approval"' in client.get("/lab/strategies/sma_cross/").content.decode()
    assert client.get("/lab/strategies/nope/").status_code == 404


def test_admin_lists_configs_and_approvals(client, staff, sweep, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw-123456789")
    client.force_login(admin)
    approval_services.job_evaluate(job=sweep, trigger="admin")
    add = client.get("/admin/strategies/approvalconfig/add/")
    assert add.status_code == 200
    assert 'name="min_trades" value="200"' in add.content.decode()  # the seed's defaults
    r = client.post("/admin/strategies/approvalconfig/add/", {
        **{f.name: f.default for f in ApprovalConfig._meta.fields
           if f.name not in ("id", "updated_at")},
        "name": "desk", "is_active": "on", "require_bull_bear_chop": "on",
    })  # fmt: skip
    assert r.status_code == 302 and r["Location"] == "/admin/strategies/approvalconfig/"
    desk = ApprovalConfig.objects.get(name="desk")
    assert desk.is_active and desk.require_bull_bear_chop and desk.min_trades == 200
    a = StrategyApproval.objects.get()
    listing = client.get("/admin/strategies/strategyapproval/")
    assert listing.status_code == 200
    # The approval history is read-only (no actions, so no checkbox): find the row by its link.
    link = f'href="/admin/strategies/strategyapproval/{a.id}/change/'
    row = listing.content.decode().split(link, 1)[1].split("</tr>", 1)[0]
    assert '<td class="field-stage">Research</td>' in row
    assert f'<td class="field-reason">{escape(a.reason)}</td>' in row
    assert '<td class="field-trigger">Admin</td>' in row
    change = client.get(f"/admin/strategies/strategyapproval/{a.id}/change/")
    assert change.status_code == 200 and escape(a.reason) in change.content.decode()


def test_strategy_summary_command_prints_the_seeds_form(sweep, no_trade_job):
    out = io.StringIO()
    call_command("strategy_summary", str(sweep.id), "--rules", stdout=out)
    text = out.getvalue()
    assert text.startswith("=== Strategy Evaluation ===\nStage: RESEARCH – ")
    for prefix in ("Trades:", "Win rate:", "Avg win:", "Expectancy/trade:",
                   "Max DD (equity curve):", "MC worst DD:", "Psychology score:",
                   "  [FAIL] Trades:"):  # fmt: skip
        assert prefix in text
    call_command("strategy_summary", f"run:{sweep.best_run_id}", stdout=io.StringIO())
    assert StrategyApproval.objects.filter(trigger="command").count() == 2
    with pytest.raises(CommandError, match="no best run to evaluate"):
        call_command("strategy_summary", f"job:{no_trade_job.id}")
    with pytest.raises(CommandError, match="closed no trade"):  # the run itself, on purpose
        call_command("strategy_summary", f"run:{no_trade_job.runs.get().id}")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("strategy_summary", "run:999999")
