"""The apply, restore, manual-version and risk-limit services at their edges: every gate's
boundary, every refusal's message and field, and the rows each success writes (the
surfaces are in test_permission_matrix.py; the main paths in test_apply.py)."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser

from apps.optimization.models import OptimizationRun
from apps.strategies.models import (
    ApprovalConfig,
    AuditEntry,
    ParameterChange,
    RiskConfig,
    StrategyConfig,
)
from apps.strategies.selectors.configs import risk_config_as_dict, risk_config_for
from apps.strategies.services import apply
from apps.strategies.services.apply import (
    _baseline,
    _reason_check,
    _version_check,
    _write_version,
    allowed_stages,
    apply_plan,
    default_min_improvement_pct,
    job_apply_best,
    job_best_run_for,
    run_apply_to_production,
    run_target,
    strategy_config_add,
    strategy_config_restore,
)
from apps.strategies.services.paper import paper_step_enqueue
from apps.strategies.services.risk_configs import (
    config_audit_record,
    config_snapshot,
    risk_config_update,
)
from backtestlab.errors import ApplicationError
from tests.factories import make_job, run_all_chunks
from tests.results_data import SEED_GRID, job_with_runs, seed_metrics
from tests.strategies.conftest import approve, grant, ranked

pytestmark = pytest.mark.django_db

KEY = {"strategy": "sma_cross", "symbol": "BTC", "timeframe": "1h", "pattern": ""}


def refused(call, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as exc:
        call(**kwargs)
    return exc.value


def versions() -> list[int]:
    return sorted(StrategyConfig.objects.values_list("version", flat=True))


# --- the version and reason gates ------------------------------------------------------------


@pytest.mark.parametrize("current", [0, 3])
def test_no_expected_version_means_the_current_one(current):
    assert _version_check(current, None) == current


def test_the_expected_version_is_returned_when_it_is_current():
    assert _version_check(0, 0) == 0  # 0 = none yet: a valid version number
    assert _version_check(4, 4) == 4


@pytest.mark.parametrize("bad", [-1, True, False, 1.0, "2", [2]])
def test_an_expected_version_that_is_no_version_number_is_a_400(bad):
    exc = refused(_version_check, current_version=1, expected_version=bad)
    assert (exc.status, exc.field) == (400, "expected_version")
    assert exc.message == f"expected_version must be a version number (0 = none yet), got {bad!r}"


@pytest.mark.parametrize("expected", [0, 2, 4])
def test_another_expected_version_is_a_409_naming_the_current_one(expected):
    exc = refused(_version_check, current_version=3, expected_version=expected)
    assert (exc.status, exc.field, exc.extra) == (409, "expected_version", {"current_version": 3})
    assert exc.message == (
        f"the production parameters changed: expected version {expected}, current is 3; "
        "reload and compare again"
    )


def test_a_reason_is_optional_text_of_at_most_2000_characters():
    assert _reason_check(None) == ""
    assert _reason_check("") == ""
    assert _reason_check("x" * 2000) == "x" * 2000
    for bad in ("x" * 2001, 5, ["why"]):
        exc = refused(_reason_check, reason=bad)
        assert exc.field == "reason" and exc.status == 400
        assert exc.message == "reason must be a text of at most 2000 characters"


def test_writing_a_version_taken_meanwhile_is_a_409_and_leaves_the_winner(alice):
    StrategyConfig.objects.create(**KEY, version=1, params={"fast": 5})
    config = _write_version(target=KEY, base_version=1, params={"fast": 7}, user=alice, note="n")
    assert (config.version, config.params, config.created_by, config.note) == (
        2,
        {"fast": 7},
        alice,
        "n",
    )
    exc = refused(_write_version, target=KEY, base_version=1, params={}, user=None, note="")
    assert (exc.status, exc.field) == (409, "expected_version")
    assert "version 2 was just written by someone else" in exc.message
    assert StrategyConfig.objects.get(**KEY, version=2).params == {"fast": 7}


# --- apply: the plan and its gates -------------------------------------------------------------


@pytest.fixture
def prod(sweep, weak_production):
    approve("PILOT")
    return sweep


def test_the_plan_compares_the_run_with_production_on_the_same_data(prod, weak_production):
    best, worst = ranked(prod)[0], ranked(prod)[-1]
    plan = apply_plan(run=best)
    assert plan.target == KEY and plan.current == weak_production
    assert (plan.from_version, plan.to_version) == (1, 2)
    assert plan.old_params == worst.params and plan.new_params == best.params
    assert plan.objective == "sharpe" and plan.stage == "PILOT"
    # production v1 holds the worst run's parameters: measured again, it scores what that run did
    assert plan.old_value == pytest.approx(worst.sharpe, rel=1e-9)
    assert plan.new_value == pytest.approx(best.sharpe, rel=1e-9)
    assert plan.old_metrics["n_trades"] == worst.n_trades
    assert plan.new_metrics["n_trades"] == best.n_trades
    expected = 100 * (best.sharpe - worst.sharpe) / abs(worst.sharpe)
    assert plan.improvement_pct == pytest.approx(expected, rel=1e-9)
    ranked_gate, stage, improvement = plan.checks
    assert ranked_gate == {
        "gate": "ranked",
        "ok": True,
        "detail": f"{best.n_trades} trades, at least the job's minimum of 1",
    }
    assert stage == {
        "gate": "stage",
        "ok": True,
        "detail": "latest approval stage of sma_cross is PILOT; allowed: PILOT, PRODUCTION",
    }
    assert improvement["gate"] == "improvement" and improvement["ok"] is True
    assert improvement["detail"] == (
        f"sharpe {best.sharpe:.4g} vs {worst.sharpe:.4g} in production on the same data: "
        f"{expected:+.1f} % (at least 5 % needed)"
    )
    assert plan.refusal is None
    d = plan.as_dict()
    assert d["diff"] == {
        k: {"old": worst.params[k], "new": best.params[k]}
        for k in best.params
        if worst.params[k] != best.params[k]
    }
    assert (d["from_version"], d["to_version"], d["stage"]) == (1, 2, "PILOT")


def test_without_production_the_baseline_is_the_strategys_defaults(sweep):
    approve("PRODUCTION")
    best = ranked(sweep)[0]
    plan = apply_plan(run=best, min_improvement_pct=0)
    assert plan.current is None and plan.old_params is None
    assert (plan.from_version, plan.to_version) == (0, 1)
    d = plan.as_dict()
    assert d["old_params"] is None
    assert d["diff"] == {k: {"old": None, "new": v} for k, v in best.params.items()}


def test_the_threshold_is_a_floor_that_the_improvement_may_equal(prod):
    best = ranked(prod)[0]
    exact = apply_plan(run=best).improvement_pct
    assert apply_plan(run=best, min_improvement_pct=exact).refusal is None
    refusal = apply_plan(run=best, min_improvement_pct=exact + 1e-6).refusal
    assert refusal["gate"] == "improvement" and refusal["ok"] is False


def test_the_default_threshold_comes_from_the_settings(prod, settings):
    best = ranked(prod)[0]
    exact = apply_plan(run=best).improvement_pct
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "APPLY_MIN_IMPROVEMENT_PCT": exact + 1}
    detail = apply_plan(run=best).refusal["detail"]
    assert detail.endswith(f"(at least {exact + 1:g} % needed)")
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "APPLY_MIN_IMPROVEMENT_PCT": exact - 1}
    assert apply_plan(run=best).refusal is None


def test_without_the_setting_the_threshold_is_5_pct_and_the_stages_pilot_and_production(
    prod, settings
):
    conf = {
        k: v
        for k, v in settings.BACKTESTLAB.items()
        if k not in ("APPLY_MIN_IMPROVEMENT_PCT", "APPLY_ALLOWED_STAGES")
    }
    settings.BACKTESTLAB = conf
    assert default_min_improvement_pct() == 5.0
    assert allowed_stages() == ("PILOT", "PRODUCTION")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "5"])
def test_a_threshold_that_is_no_finite_number_is_a_400(prod, bad):
    exc = refused(apply_plan, run=ranked(prod)[0], min_improvement_pct=bad)
    assert exc.field == "min_improvement_pct" and exc.message == (
        "min_improvement_pct must be a finite number"
    )


def test_a_negative_threshold_lets_a_worse_run_through(prod):
    second = ranked(prod)[1]
    assert apply_plan(run=second, min_improvement_pct=-1e9).refusal is None


def test_a_worse_run_is_refused_with_a_negative_improvement(prod):
    """The worst but one run against production v1 = the worst: better; against a better v2:
    worse, and the detail says by how much."""
    best, second = ranked(prod)[0], ranked(prod)[1]
    StrategyConfig.objects.create(**KEY, version=2, params=best.params)
    plan = apply_plan(run=second)
    assert plan.improvement_pct < 0
    assert plan.refusal["gate"] == "improvement"
    assert f"{plan.improvement_pct:+.1f} %" in plan.refusal["detail"]


def test_a_baseline_with_no_sharpe_lets_any_run_with_one_through(prod):
    """Production parameters that never trade (fast above slow) have no Sharpe: no %
    improvement is defined, and a run with a Sharpe is better than none."""
    StrategyConfig.objects.create(**KEY, version=2, params={"fast": 60, "slow": 30})
    best = ranked(prod)[0]
    plan = apply_plan(run=best, min_improvement_pct=1e9)
    assert plan.old_value is None and plan.improvement_pct is None
    assert plan.refusal is None
    assert plan.checks[2]["detail"] == (
        f"sharpe {best.sharpe:.4g} vs None (no % improvement defined)"
    )


def test_a_run_without_a_sharpe_is_refused(prod):
    run = ranked(prod)[0]
    OptimizationRun.objects.filter(id=run.id).update(sharpe=None)
    run.refresh_from_db()
    plan = apply_plan(run=run)
    assert plan.new_value is None
    assert plan.refusal == {
        "gate": "ranked",
        "ok": False,
        "detail": "sharpe is undefined for this run",
    }
    assert plan.checks[2] == {
        "gate": "improvement",
        "ok": False,
        "detail": "the run has no sharpe value",
    }


def test_a_run_no_better_than_a_zero_baseline_is_refused(prod, monkeypatch):
    """A baseline of exactly 0 defines no % improvement: strictly better passes, equal not."""
    run = ranked(prod)[0]
    real = _baseline

    def zero_baseline(job, run, config):
        base = real(job, run, config)
        return {**base, "metrics": {**base["metrics"], "sharpe": 0.0}}

    monkeypatch.setattr(apply, "_baseline", zero_baseline)
    assert apply_plan(run=run, min_improvement_pct=1e9).refusal is None
    OptimizationRun.objects.filter(id=run.id).update(sharpe=0.0)
    run.refresh_from_db()
    refusal = apply_plan(run=run).refusal
    assert (
        refusal["gate"] == "improvement"
        and "vs 0 (no % improvement defined)" in (refusal["detail"])
    )
    OptimizationRun.objects.filter(id=run.id).update(sharpe=-0.5)
    run.refresh_from_db()
    assert apply_plan(run=run).refusal["gate"] == "improvement"


def test_a_strategy_never_evaluated_is_refused_at_the_stage_gate(sweep, weak_production):
    check = apply_plan(run=ranked(sweep)[0]).checks[1]
    assert check == {
        "gate": "stage",
        "ok": False,
        "detail": "sma_cross has not been evaluated for approval yet; allowed: PILOT, PRODUCTION",
    }


def test_the_latest_approval_decides_the_stage(sweep, weak_production):
    approve("PRODUCTION")
    approve("RESEARCH")
    plan = apply_plan(run=ranked(sweep)[0])
    assert plan.stage == "RESEARCH" and plan.refusal["gate"] == "stage"
    approve("PILOT", strategy="smc_zones")  # another strategy's decision changes nothing
    assert apply_plan(run=ranked(sweep)[0]).stage == "RESEARCH"


def test_only_a_succeeded_sweep_run_can_be_applied(prod):
    run = ranked(prod)[0]
    OptimizationRun.objects.filter(id=run.id).update(status=OptimizationRun.Status.FAILED)
    run.refresh_from_db()
    exc = refused(apply_plan, run=run)
    assert exc.field == "run" and exc.message == (
        f"run {run.id} is not a succeeded sweep run: only those can be applied"
    )
    run = ranked(prod)[1]
    type(prod).objects.filter(id=prod.id).update(kind="monte_carlo")
    run.job.refresh_from_db()
    assert refused(apply_plan, run=run).field == "run"


# --- apply: what it writes -------------------------------------------------------------------


def test_a_refusal_carries_the_plan_and_writes_nothing(sweep, weak_production, alice):
    approve("RESEARCH")
    exc = refused(run_apply_to_production, run=ranked(sweep)[0], user=grant(alice), dry_run=False)
    assert exc.status == 400 and exc.field == "stage"
    assert exc.message.startswith("not applied (stage gate): latest approval stage of sma_cross")
    plan = exc.extra["plan"]
    assert plan["to_version"] == 2 and plan["stage"] == "RESEARCH"
    assert versions() == [1] and ParameterChange.objects.count() == 0


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_dry_run_must_be_true_or_false(prod, alice, bad):
    exc = refused(run_apply_to_production, run=ranked(prod)[0], user=grant(alice), dry_run=bad)
    assert (exc.field, exc.message) == ("dry_run", "dry_run must be true or false")
    assert versions() == [1] and ParameterChange.objects.count() == 0


def test_a_bad_reason_is_refused_before_anything_is_written(prod, alice):
    exc = refused(
        run_apply_to_production,
        run=ranked(prod)[0],
        user=grant(alice),
        dry_run=False,
        reason="x" * 2001,
    )
    assert exc.field == "reason"
    assert versions() == [1] and ParameterChange.objects.count() == 0


def test_a_stale_expected_version_is_refused_even_in_a_dry_run(prod, alice):
    exc = refused(
        run_apply_to_production,
        run=ranked(prod)[0],
        user=grant(alice),
        dry_run=True,
        expected_version=0,
    )
    assert exc.status == 409


def test_an_apply_answers_with_the_plan_the_version_and_the_change(prod, alice):
    alice = grant(alice)
    best, worst = ranked(prod)[0], ranked(prod)[-1]
    answer = run_apply_to_production(
        run=best, user=alice, dry_run=False, expected_version=1, source="page"
    )
    change = ParameterChange.objects.get()
    config = StrategyConfig.objects.get(**KEY, version=2)
    assert answer["ok"] is True and answer["dry_run"] is False and answer["applied"] is True
    assert (answer["version"], answer["change"]) == (2, change.id)
    assert (answer["from_version"], answer["to_version"]) == (1, 2)
    assert answer["new_params"] == best.params and answer["old_params"] == worst.params
    assert config.note == f"applied run {best.id} of job {prod.id}"  # no reason given
    assert change.reason == "" and change.source == "page"
    assert change.improvement_pct == pytest.approx(answer["improvement_pct"])
    assert change.old_value == pytest.approx(worst.sharpe, rel=1e-9)


def test_an_apply_asks_for_a_paper_step_once_committed_and_a_dry_run_does_not(
    prod, alice, django_capture_on_commit_callbacks
):
    alice = grant(alice)
    with django_capture_on_commit_callbacks() as callbacks:
        run_apply_to_production(run=ranked(prod)[0], user=alice, dry_run=True)
    assert paper_step_enqueue not in callbacks
    with django_capture_on_commit_callbacks() as callbacks:
        run_apply_to_production(run=ranked(prod)[0], user=alice, dry_run=False)
    assert callbacks.count(paper_step_enqueue) == 1


def test_a_proposal_is_recorded_only_when_asked_and_never_touches_production(prod, alice):
    alice = grant(alice)
    best = ranked(prod)[0]
    answer = run_apply_to_production(run=best, user=alice, dry_run=True)
    assert "change" not in answer and ParameterChange.objects.count() == 0
    answer = run_apply_to_production(
        run=best, user=alice, dry_run=True, record_proposal=True, reason="weekly", source="beat"
    )
    change = ParameterChange.objects.get()
    assert answer["change"] == change.id and answer["applied"] is False
    assert (change.kind, change.dry_run, change.config, change.source) == (
        "proposal",
        True,
        None,
        "beat",
    )
    assert (change.from_version, change.to_version, change.user) == (1, 2, alice)
    assert change.reason == "weekly" and change.new_params == best.params
    assert versions() == [1]


def test_record_proposal_changes_nothing_in_a_real_apply(prod, alice):
    run_apply_to_production(
        run=ranked(prod)[0], user=grant(alice), dry_run=False, record_proposal=True
    )
    assert list(ParameterChange.objects.values_list("kind", "dry_run")) == [("apply", False)]


# --- apply a job's best -----------------------------------------------------------------------


@pytest.fixture
def two_symbols(alice, datasets):
    job = make_job(alice, datasets)
    run_all_chunks(job)
    return job


def best_on(job, dataset):
    return (
        OptimizationRun.objects.filter(job=job, dataset=dataset, sharpe__isnull=False)
        .order_by("-sharpe", "id")
        .first()
    )


def test_a_jobs_best_is_its_best_run_overall_or_on_one_dataset(two_symbols, datasets):
    overall = max(
        OptimizationRun.objects.filter(job=two_symbols, sharpe__isnull=False),
        key=lambda r: (r.sharpe, -r.id),
    )
    assert job_best_run_for(job=two_symbols) == overall
    for ds in datasets:
        assert job_best_run_for(job=two_symbols, dataset_id=ds.id) == best_on(two_symbols, ds)


def test_a_jobs_best_refuses_a_missing_slice_or_an_unfinished_job(two_symbols, alice):
    exc = refused(job_best_run_for, job=two_symbols, dataset_id=999999)
    assert exc.field == "dataset" and exc.message.startswith("no such slice in the job")
    exc = refused(job_best_run_for, job=two_symbols, group="imbalance")
    assert exc.field == "group"
    pending = make_job(alice, [two_symbols.datasets.first()], name="pending", start=False)
    exc = refused(job_best_run_for, job=pending)
    assert exc.field == "job" and exc.message == (
        f"job {pending.id} is pending: only a succeeded job's best can be applied"
    )


def test_a_dataset_the_job_did_not_use_is_no_slice_whatever_its_id(alice, datasets):
    """A job on ETH only: BTC (a smaller id) and an id above every dataset are both refused."""
    eth_only = job_with_runs(alice, datasets[1:], lambda d, gi, p: {"sharpe": 1.0 + gi})
    for missing in (datasets[0].id, datasets[1].id + 1000):
        exc = refused(job_best_run_for, job=eth_only, dataset_id=missing)
        assert exc.field == "dataset" and exc.message.startswith("no such slice in the job")
    best = job_best_run_for(job=eth_only, dataset_id=datasets[1].id)
    assert best.dataset == datasets[1] and best.sharpe == 12.0


def test_a_job_without_a_scored_run_has_no_best(two_symbols, datasets):
    OptimizationRun.objects.filter(job=two_symbols).update(sharpe=None)
    exc = refused(job_best_run_for, job=two_symbols)
    assert (exc.field, exc.message) == (
        "job",
        f"job {two_symbols.id} has no ranked run (each one failed, has fewer than 1 trades or "
        "an undefined sharpe)",
    )
    exc = refused(job_best_run_for, job=two_symbols, dataset_id=datasets[1].id)
    assert (exc.field, exc.message) == (
        "dataset",
        "no ranked run (each one failed, has fewer than 1 trades or an undefined sharpe) in "
        "that slice",
    )


def test_applying_a_jobs_best_on_one_dataset_writes_that_datasets_key(two_symbols, datasets, alice):
    approve("PILOT")
    eth = datasets[1]
    answer = job_apply_best(
        job=two_symbols,
        user=grant(alice),
        dataset_id=eth.id,
        dry_run=False,
        min_improvement_pct=-1e9,
    )
    config = StrategyConfig.objects.get()
    assert (config.symbol, config.version, answer["symbol"]) == (eth.symbol, 1, eth.symbol)
    assert config.params == best_on(two_symbols, eth).params


@pytest.fixture
def seed_job(alice, datasets):
    """smc_zones with the seed's win-rate table on BTC and ETH, grouped by pattern_type."""
    return job_with_runs(
        alice, datasets, seed_metrics, grid=SEED_GRID, strategy="smc_zones", objective="win_rate"
    )


def test_a_jobs_best_in_one_group_is_that_groups_best(seed_job, datasets):
    """Imbalance's best win rate is 55 (rr 2.0, sl 10); order_block's is 100 - 28 = 72."""
    eth = datasets[1]
    run = job_best_run_for(job=seed_job, group="order_block", dataset_id=eth.id)
    assert run.dataset == eth and run.win_rate == 72.0
    assert (run.params["pattern_type"], run.params["rr_target"], run.params["sl_buffer_pct"]) == (
        "order_block",
        3.0,
        5,
    )
    run = job_best_run_for(job=seed_job, group="imbalance")
    assert run.dataset == datasets[0] and run.win_rate == 55.0
    assert (run.params["rr_target"], run.params["sl_buffer_pct"]) == (2.0, 10)
    assert job_best_run_for(job=seed_job, dataset_id=eth.id).dataset == eth
    assert job_best_run_for(job=seed_job).params["pattern_type"] == "order_block"
    exc = refused(job_best_run_for, job=seed_job, group="liquidity_sweep")
    assert exc.field == "group"


def test_a_runs_production_key_carries_its_group_value(seed_job, datasets):
    run = job_best_run_for(job=seed_job, group="imbalance", dataset_id=datasets[1].id)
    assert run_target(run) == {
        "strategy": "smc_zones",
        "symbol": "ETH",
        "timeframe": "1h",
        "pattern": "imbalance",
    }


def test_a_run_of_a_retired_strategy_has_no_group_in_its_key(seed_job, datasets):
    """A job stored before its strategy left the registry still names its key."""
    run = job_best_run_for(job=seed_job, group="imbalance")
    type(seed_job).objects.filter(id=seed_job.id).update(strategy="retired_zones")
    run = OptimizationRun.objects.select_related("job", "dataset").get(id=run.id)
    assert run_target(run) == {
        "strategy": "retired_zones",
        "symbol": "BTC",
        "timeframe": "1h",
        "pattern": "",
    }


# --- restore ---------------------------------------------------------------------------------


@pytest.fixture
def two_versions():
    v1 = StrategyConfig.objects.create(**KEY, version=1, params={"fast": 5, "slow": 30})
    v2 = StrategyConfig.objects.create(**KEY, version=2, params={"fast": 20, "slow": 60})
    return v1, v2


def test_a_restore_answers_with_the_new_version_and_its_change(two_versions, alice):
    alice = grant(alice)
    answer = strategy_config_restore(
        **KEY, version=1, user=alice, reason="rollback", expected_version=2, source="api"
    )
    change = ParameterChange.objects.get()
    assert answer == {
        "ok": True,
        "applied": True,
        **KEY,
        "version": 3,
        "restored_version": 1,
        "params": {"fast": 5, "slow": 30},
        "change": change.id,
    }
    assert StrategyConfig.objects.get(**KEY, version=3).note == "rollback"


def test_restoring_a_key_without_production_is_a_404(two_versions, alice):
    exc = refused(strategy_config_restore, **{**KEY, "symbol": "ETH"}, version=1, user=grant(alice))
    assert exc.status == 404 and exc.message == "no production parameters for that key yet"


@pytest.mark.parametrize("bad", [True, "1", 1.0, None])
def test_a_restore_version_must_be_a_version_number(two_versions, alice, bad):
    exc = refused(strategy_config_restore, **KEY, version=bad, user=grant(alice))
    assert (exc.field, exc.message) == ("version", f"version must be a version number, got {bad!r}")
    assert versions() == [1, 2] and ParameterChange.objects.count() == 0


def test_restoring_a_version_that_never_was_is_a_400(two_versions, alice):
    exc = refused(strategy_config_restore, **KEY, version=7, user=grant(alice))
    assert (exc.status, exc.field) == (400, "version")
    assert exc.message == "there is no version 7 (current is 2)"


def test_a_restore_needs_the_current_version_when_one_is_expected(two_versions, alice):
    exc = refused(strategy_config_restore, **KEY, version=1, user=grant(alice), expected_version=1)
    assert exc.status == 409 and versions() == [1, 2]


def test_a_restore_with_a_bad_reason_writes_nothing(two_versions, alice):
    exc = refused(strategy_config_restore, **KEY, version=1, user=grant(alice), reason=["why"])
    assert exc.field == "reason" and versions() == [1, 2]


def test_a_restore_works_whatever_the_stage(two_versions, alice):
    approve("RESEARCH")
    assert strategy_config_restore(**KEY, version=1, user=grant(alice))["version"] == 3


def test_restoring_a_pattern_key_keeps_the_pattern(alice):
    key = {**KEY, "strategy": "smc_zones", "pattern": "imbalance"}
    StrategyConfig.objects.create(**key, version=1, params={"a": 1})
    StrategyConfig.objects.create(**key, version=2, params={"a": 2})
    StrategyConfig.objects.create(**KEY, version=1, params={"other": True})
    answer = strategy_config_restore(**key, version=1, user=grant(alice))
    assert answer["pattern"] == "imbalance" and answer["version"] == 3
    assert StrategyConfig.objects.get(**key, version=3).params == {"a": 1}
    assert ParameterChange.objects.get().pattern == "imbalance"


# --- a hand-written version ---------------------------------------------------------------------


def test_a_hand_written_version_needs_the_permission(alice):
    for user in (alice, AnonymousUser()):
        exc = refused(strategy_config_add, **KEY, params={"fast": 8}, user=user)
        assert exc.status == 403
    assert StrategyConfig.objects.count() == 0 and ParameterChange.objects.count() == 0


def test_a_hand_written_version_is_the_next_one_with_complete_parameters(two_versions, alice):
    alice = grant(alice)
    config = strategy_config_add(
        **KEY, params={"fast": 8, "slow": 40}, user=alice, note="desk", expected_version=2
    )
    assert config.version == 3 and config.created_by == alice and config.note == "desk"
    assert config.params == {"fast": 8, "slow": 40, "sl_pct": 2.0, "rr": 2.0}
    change = ParameterChange.objects.get()
    assert (change.kind, change.from_version, change.to_version, change.source) == (
        "manual",
        2,
        3,
        "admin",
    )
    assert change.old_params == {"fast": 20, "slow": 60} and change.reason == "desk"
    assert change.user == alice and change.config == config


def test_the_system_may_write_a_version_for_a_new_key():
    config = strategy_config_add(**{**KEY, "pattern": None}, params={}, user=None, source="command")
    assert (config.version, config.pattern, config.created_by) == (1, "", None)
    change = ParameterChange.objects.get()
    assert (change.from_version, change.old_params, change.user) == (0, None, None)


@pytest.mark.parametrize(
    "kwargs, field, message",
    [
        ({"strategy": "nope"}, "strategy", "unknown strategy 'nope'"),
        ({"params": [8]}, "params", "params must be an object"),
        ({"params": {"fast": 60, "slow": 30}}, "params", "fast"),
        ({"params": {"speed": 3}}, "params", "speed"),
        ({"symbol": " "}, "symbol", "symbol is required (text)"),
        ({"timeframe": None}, "timeframe", "timeframe is required (text)"),
        ({"note": "x" * 2001}, "reason", "reason must be a text"),
        ({"expected_version": 0}, "expected_version", "expected version 0, current is 2"),
    ],
)
def test_a_bad_hand_written_version_is_refused_naming_the_field(
    two_versions, alice, kwargs, field, message
):
    args = {**KEY, "params": {"fast": 8}, "user": grant(alice), **kwargs}
    exc = refused(strategy_config_add, **args)
    assert exc.field == field and message in exc.message
    assert versions() == [1, 2] and ParameterChange.objects.count() == 0


# --- risk limits ---------------------------------------------------------------------------------


def risk(user=None, **data) -> RiskConfig:
    return risk_config_update(strategy="options_selector", data=data, user=user)


@pytest.mark.parametrize(
    "value, stored",
    [(0.0001, "0.0001"), (1, "1.0000"), ("0.02", "0.0200"), (0.012345, "0.0123"), (0.5, "0.5000")],
)
def test_risk_fractions_are_kept_between_0_0001_and_1_to_four_places(value, stored):
    obj = risk(max_risk_per_trade=value, max_risk_per_underlying=value)
    assert obj.max_risk_per_trade == Decimal(stored)
    obj.refresh_from_db()
    assert str(obj.max_risk_per_trade) == stored and str(obj.max_risk_per_underlying) == stored


@pytest.mark.parametrize("value", [0.00009, 1.0001, 0, -0.01, "nan", "inf", "1e400"])
def test_risk_fractions_out_of_range_are_refused(value):
    for key in ("max_risk_per_trade", "max_risk_per_underlying"):
        exc = refused(risk, **{key: value})
        assert exc.field == key
        assert exc.message == (
            f"{key} must be between 0.0001 and 1 (a fraction of equity), got {value}"
        )
    assert RiskConfig.objects.count() == 0 and AuditEntry.objects.count() == 0


@pytest.mark.parametrize("value", [True, None, [0.01], {"v": 1}])
def test_risk_fractions_of_the_wrong_type_are_refused(value):
    exc = refused(risk, max_risk_per_trade=value)
    assert exc.message == "max_risk_per_trade must be a fraction of equity such as 0.01"
    assert RiskConfig.objects.count() == 0


def test_a_risk_fraction_that_is_no_number_is_refused():
    exc = refused(risk, max_risk_per_underlying="lots")
    assert exc.message == "max_risk_per_underlying must be a number, got 'lots'"


@pytest.mark.parametrize("value", [0, 1000])
def test_the_daily_cap_may_be_0_to_1000(value):
    assert risk(max_new_trades_per_day=value).max_new_trades_per_day == value


@pytest.mark.parametrize("value", [-1, 1001, 2.0, True, "2"])
def test_a_daily_cap_outside_0_to_1000_is_refused(value):
    exc = refused(risk, max_new_trades_per_day=value)
    assert exc.field == "max_new_trades_per_day" and exc.message == (
        f"max_new_trades_per_day must be a whole number 0..1000, got {value!r}"
    )
    assert RiskConfig.objects.count() == 0


def test_enabled_must_be_true_or_false():
    assert risk(enabled=False).enabled is False
    assert risk(enabled=True).enabled is True
    exc = refused(risk, enabled=1)
    assert (exc.field, exc.message) == ("enabled", "enabled must be true or false")


def test_risk_limits_refuse_an_unknown_strategy_field_or_body():
    exc = refused(risk_config_update, strategy="nope", data={}, user=None)
    assert exc.status == 404 and exc.field == "strategy"
    exc = refused(risk_config_update, strategy="sma_cross", data=[1], user=None)
    assert exc.message == "the body must be a JSON object"
    exc = refused(risk, max_loss=0.1)
    assert exc.field == "max_loss" and exc.message == (
        "unknown field 'max_loss'; allowed: max_risk_per_trade, max_risk_per_underlying, "
        "max_new_trades_per_day, enabled"
    )
    assert RiskConfig.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_a_risk_change_keeps_the_other_limits_and_audits_before_and_after(alice):
    alice = grant(alice, "change_riskconfig")
    risk(alice, max_risk_per_trade=0.02, max_new_trades_per_day=5)
    obj = risk(alice, enabled=False)
    assert (str(obj.max_risk_per_trade), obj.max_new_trades_per_day, obj.enabled) == (
        "0.0200",
        5,
        False,
    )
    assert str(obj.max_risk_per_underlying) == "0.0300"  # the seed's default, untouched
    assert RiskConfig.objects.count() == 1
    create, update = AuditEntry.objects.order_by("id")
    assert (create.action, update.action) == ("create", "update")
    assert update.before["max_new_trades_per_day"] == 5 and update.before["enabled"] is True
    assert update.after["enabled"] is False and update.after["max_risk_per_trade"] == "0.0200"
    assert update.user == alice and update.object_id == obj.pk
    assert obj.updated_by == alice


def test_risk_config_for_answers_the_seeds_defaults_unsaved():
    obj = risk_config_for("options_selector")
    assert obj.pk is None and str(obj.max_risk_per_trade) == "0.01"
    d = risk_config_as_dict(obj)
    assert d == {
        "strategy": "options_selector",
        "max_risk_per_trade": 0.01,
        "max_risk_per_underlying": 0.03,
        "max_new_trades_per_day": 2,
        "enabled": True,
        "stored": False,
        "updated_at": None,
    }


# --- the audit of risk and approval configs ------------------------------------------------------


def test_the_audit_records_create_update_and_delete_of_an_approval_config(alice):
    config = ApprovalConfig.objects.create(name="strict", min_trades=300)
    created = config_audit_record(obj=config, before=None, user=alice, source="admin")
    assert (created.kind, created.action, created.object_id) == (
        "approval_config",
        "create",
        config.pk,
    )
    assert created.object_repr == "strict" and created.after["min_trades"] == 300
    before = config_snapshot(config)
    config.min_trades = 100
    config.save()
    updated = config_audit_record(obj=config, before=before, user=alice, source="admin")
    assert updated.action == "update" and updated.before["min_trades"] == 300
    assert updated.after["min_trades"] == 100 and updated.user == alice
    deleted = config_audit_record(
        obj=config,
        before=config_snapshot(config),
        user=AnonymousUser(),
        source="admin",
        deleted=True,
    )
    assert (deleted.action, deleted.after, deleted.user) == ("delete", None, None)
    assert deleted.before["min_trades"] == 100


def test_the_audit_of_a_risk_config_cuts_a_long_name_to_200_characters():
    entry = config_audit_record(
        obj=RiskConfig(strategy="x" * 300), before=None, user=None, source="api"
    )
    assert entry.kind == "risk_config" and entry.action == "create" and entry.user is None
    assert entry.object_repr == ("risk " + "x" * 300)[:200]
    assert AuditEntry.objects.get().object_repr == entry.object_repr
