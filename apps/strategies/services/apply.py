"""Writes of production parameters: the one apply service and everything that goes through it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.optimization.gateway import (
    json_safe,
    metric_or_none,
    metric_text,
    params_backtest,
    result_metrics,
)
from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.optimization.ranking import no_ranked_run, run_unranked_reason
from apps.optimization.selectors.jobs import job_best_runs
from apps.optimization.selectors.slices import format_value, job_slices
from apps.strategies.models import (
    ParameterChange,
    StrategyApproval,
    StrategyConfig,
)
from apps.strategies.selectors.best_table import improvement_pct, production_metrics
from apps.strategies.selectors.configs import strategy_config_current
from apps.strategies.services.paper import paper_step_enqueue
from backtestlab.engine.metrics import METRICS
from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies import STRATEGIES, get_strategy
from backtestlab.errors import ApplicationError

APPLY_PERMISSION = "strategies.apply_parameters"

DEFAULT_ALLOWED_STAGES = ("PILOT", "PRODUCTION")

DEFAULT_MIN_IMPROVEMENT_PCT = 5.0

SOURCES = ("page", "api", "admin", "command", "beat")


def allowed_stages() -> tuple[str, ...]:
    conf = getattr(settings, "BACKTESTLAB", {})
    return tuple(conf.get("APPLY_ALLOWED_STAGES", DEFAULT_ALLOWED_STAGES))


def default_min_improvement_pct() -> float:
    conf = getattr(settings, "BACKTESTLAB", {})
    return float(conf.get("APPLY_MIN_IMPROVEMENT_PCT", DEFAULT_MIN_IMPROVEMENT_PCT))


def can_apply(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_perm(APPLY_PERMISSION))


def permission_check(user) -> None:
    """Refuses (403) everyone but the system (``None``) and users with the permission, so after
    it ``user`` is None or an authenticated user and may be stored as the author as it is."""
    if user is not None and not can_apply(user):
        raise ApplicationError(
            "you may not apply parameters to production: the strategies.apply_parameters "
            "permission is needed",
            status=403,
        )


def run_target(run: OptimizationRun) -> dict[str, str]:
    """The production key a run's parameters would replace: (strategy, symbol, timeframe,
    pattern = the run's group_by values joined by '/', as the best table's slices)."""
    strategy = run.job.strategy
    try:
        group_by = get_strategy(strategy).group_by
    except ParameterError:
        group_by = ()
    grid = run.job.grid
    pattern = "/".join(_fmt(run.params.get(n)) for n in group_by if n in grid)
    return {
        "strategy": strategy,
        "symbol": run.dataset.symbol,
        "timeframe": run.dataset.timeframe,
        "pattern": pattern,
    }


def _fmt(value: Any) -> str:
    return format_value(value)


def latest_stage(strategy: str) -> StrategyApproval | None:
    return StrategyApproval.objects.filter(strategy=strategy).order_by("-created_at", "-id").first()


def _baseline(job: OptimizationJob, run: OptimizationRun, config: StrategyConfig | None) -> dict:
    """Metrics of the production parameters (or the defaults) on the run's data."""
    if config is not None:
        return production_metrics(job, run.dataset, config)
    params = get_strategy(job.strategy).parameter_space().validate_params({})
    metrics = result_metrics(params_backtest(job, run.dataset, params))
    return {"params": params, "metrics": metrics, "error": ""}


def _improvement(value: float | None, baseline: float | None, objective: str) -> float | None:
    return improvement_pct(value, baseline, objective)


@dataclass
class ApplyPlan:
    """Everything an apply would do, computed without writing (the dry-run answer)."""

    target: dict
    current: StrategyConfig | None
    from_version: int
    to_version: int
    old_params: dict | None
    new_params: dict
    objective: str
    old_value: float | None
    new_value: float | None
    improvement_pct: float | None
    old_metrics: dict
    new_metrics: dict
    stage: str
    checks: list[dict]

    @property
    def refusal(self) -> dict | None:
        return next((c for c in self.checks if not c["ok"]), None)

    def as_dict(self) -> dict:
        keys = sorted(set(self.old_params or {}) | set(self.new_params))
        diff = {
            k: {"old": (self.old_params or {}).get(k), "new": self.new_params.get(k)}
            for k in keys
            if (self.old_params or {}).get(k) != self.new_params.get(k)
        }
        return {
            **self.target,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "old_params": self.old_params,
            "new_params": self.new_params,
            "diff": diff,
            "objective": self.objective,
            "old_value": self.old_value,
            "new_value": self.new_value,
            "improvement_pct": self.improvement_pct,
            "old_metrics": self.old_metrics,
            "new_metrics": self.new_metrics,
            "stage": self.stage,
            "checks": self.checks,
        }


def apply_plan(*, run: OptimizationRun, min_improvement_pct: float | None = None) -> ApplyPlan:
    """Current vs new parameters, both measured on the run's data, and the gates' verdicts."""
    job = run.job
    if job.kind != OptimizationJob.Kind.GRID or run.status != OptimizationRun.Status.SUCCEEDED:
        raise ApplicationError(
            f"run {run.id} is not a succeeded sweep run: only those can be applied", field="run"
        )
    threshold = (
        default_min_improvement_pct() if min_improvement_pct is None else min_improvement_pct
    )
    if not (isinstance(threshold, int | float) and math.isfinite(threshold)):
        raise ApplicationError(
            "min_improvement_pct must be a finite number", field="min_improvement_pct"
        )
    target = run_target(run)
    current = strategy_config_current(**target)
    from_version = current.version if current else 0
    baseline = _baseline(job, run, current)
    objective = job.objective
    old_value = baseline["metrics"].get(objective)
    new_value = metric_or_none(getattr(run, objective))
    improvement = _improvement(new_value, old_value, objective)
    approval = latest_stage(target["strategy"])
    stage = approval.stage if approval else ""
    stages = allowed_stages()
    unranked = run_unranked_reason(run)
    checks = [
        {
            "gate": "ranked",
            "ok": not unranked,
            "detail": unranked
            or f"{run.n_trades} trades, at least the job's minimum of {job.min_trades}",
        },
        {
            "gate": "stage",
            "ok": stage in stages,
            "detail": (
                f"latest approval stage of {target['strategy']} is {stage}"
                if stage
                else f"{target['strategy']} has not been evaluated for approval yet"
            )
            + f"; allowed: {', '.join(stages)}",
        },
    ]
    better = METRICS[objective].higher_is_better
    if new_value is None:
        ok, detail = False, f"the run has no {objective} value"
    elif improvement is None:
        # no finite baseline (no trades) or a zero one: better is enough
        if old_value is None:
            ok = True
        elif better:
            ok = new_value > old_value
        else:  # no objective is lower-is-better yet: see mutation/equivalent.md
            ok = new_value < old_value  # pragma: no mutate
        detail = f"{objective} {metric_text(new_value)} vs {metric_text(old_value) if old_value is not None else None} (no % improvement defined)"  # noqa: E501
    else:
        ok = improvement >= threshold
        detail = (
            f"{objective} {metric_text(new_value)} vs {metric_text(old_value)} in production on "
            "the same data: "
            f"{improvement:+.1f} % (at least {threshold:g} % needed)"
        )
    checks.append({"gate": "improvement", "ok": bool(ok), "detail": detail})
    new_params = get_strategy(job.strategy).parameter_space().validate_params(run.params)
    return ApplyPlan(
        target=target,
        current=current,
        from_version=from_version,
        to_version=from_version + 1,
        old_params=dict(baseline["params"]) if current else None,
        new_params=dict(new_params),
        objective=objective,
        old_value=old_value,
        new_value=new_value,
        improvement_pct=improvement,
        old_metrics=baseline["metrics"],
        new_metrics={n: metric_or_none(getattr(run, n)) for n in METRICS},
        stage=stage,
        checks=checks,
    )


def _version_check(current_version: int, expected_version: Any) -> int:
    if expected_version is None:
        return current_version
    if (
        isinstance(expected_version, bool)
        or not isinstance(expected_version, int)
        or expected_version < 0
    ):
        raise ApplicationError(
            f"expected_version must be a version number (0 = none yet), got {expected_version!r}",
            field="expected_version",
        )
    if expected_version != current_version:
        raise ApplicationError(
            f"the production parameters changed: expected version {expected_version}, current "
            f"is {current_version}; reload and compare again",
            field="expected_version",
            status=409,
            extra={"current_version": current_version},
        )
    return expected_version


def _reason_check(reason: Any) -> str:
    if reason is None:
        return ""
    if not isinstance(reason, str) or len(reason) > 2000:
        raise ApplicationError("reason must be a text of at most 2000 characters", field="reason")
    return reason


def _write_version(
    *, target: dict, base_version: int, params: dict, user, note: str
) -> StrategyConfig:
    """Insert version ``base_version + 1`` or answer 409: the unique constraint picks the winner."""
    try:
        with transaction.atomic():
            return StrategyConfig.objects.create(
                **target, version=base_version + 1, params=params, created_by=user, note=note
            )
    except IntegrityError:
        raise ApplicationError(
            f"the production parameters changed meanwhile (version {base_version + 1} was just "
            "written by someone else); reload and compare again",
            field="expected_version",
            status=409,
        ) from None


def run_apply_to_production(
    *,
    run: OptimizationRun,
    user,
    dry_run: bool,
    reason: str = "",
    expected_version: int | None = None,
    min_improvement_pct: float | None = None,
    source: str = "api",
    record_proposal: bool = False,
) -> dict:
    """Apply ``run``'s parameters to production, or (``dry_run``) return what would change.

    A dry-run writes nothing, except with ``record_proposal`` (the auto-tuner): then one
    ParameterChange flagged ``dry_run`` is stored and StrategyConfig is never touched.
    Refusals raise ApplicationError (403 permission, 409 version, 400 stage/improvement)."""
    permission_check(user)
    if not isinstance(dry_run, bool):
        raise ApplicationError("dry_run must be true or false", field="dry_run")
    reason = _reason_check(reason)
    plan = apply_plan(run=run, min_improvement_pct=min_improvement_pct)
    base = _version_check(plan.from_version, expected_version)
    refusal = plan.refusal
    if refusal is not None:
        raise ApplicationError(
            f"not applied ({refusal['gate']} gate): {refusal['detail']}",
            field=refusal["gate"],
            extra={"plan": _jsonable(plan.as_dict())},
        )
    answer = {"ok": True, "dry_run": dry_run, "applied": False, **_jsonable(plan.as_dict())}
    common = dict(
        **plan.target, from_version=base, to_version=base + 1, old_params=plan.old_params,
        new_params=plan.new_params, job=run.job, run=run, objective=plan.objective,
        old_value=plan.old_value, new_value=plan.new_value, improvement_pct=plan.improvement_pct,
        stage=plan.stage, reason=reason, source=source, user=user,
    )  # fmt: skip
    if dry_run:
        if record_proposal:
            change = ParameterChange.objects.create(
                kind=ParameterChange.Kind.PROPOSAL, dry_run=True, **common
            )
            answer["change"] = change.id
        return answer
    with transaction.atomic():
        config = _write_version(
            target=plan.target, base_version=base, params=plan.new_params,
            user=common["user"], note=reason or f"applied run {run.id} of job {run.job_id}",
        )  # fmt: skip
        change = ParameterChange.objects.create(
            kind=ParameterChange.Kind.APPLY, config=config, **common
        )
        # the paper books trade the new version; a broker that is down must not turn the
        # committed apply into an error (the hourly beat tick steps them anyway)
        transaction.on_commit(paper_step_enqueue, robust=True)
    answer.update(applied=True, version=config.version, change=change.id)
    return answer


def _jsonable(d: dict) -> dict:
    return json_safe(d)


def job_best_run_for(
    *, job: OptimizationJob, dataset_id: int | None = None, group: str | None = None
) -> OptimizationRun:
    """The job's best run (overall, or on one dataset and group as in the best table)."""
    if job.status != "succeeded":
        raise ApplicationError(
            f"job {job.id} is {job.status}: only a succeeded job's best can be applied", field="job"
        )  # noqa: E501
    if dataset_id is None and group is None:
        runs = job_best_runs(job=job, limit=1)  # pragma: no mutate
        if not runs:
            raise ApplicationError(
                f"job {job.id} has {no_ranked_run(job.min_trades, job.objective)}", field="job"
            )
        return runs[0]
    for s in job_slices(job):
        if dataset_id is not None and s.dataset.id != dataset_id:
            continue
        if group is not None and s.group_label != group:
            continue
        runs = job_best_runs(
            job=job,
            limit=1,  # pragma: no mutate
            dataset_id=s.dataset.id,
            params=s.group,
        )
        if runs:
            return runs[0]
        raise ApplicationError(
            f"{no_ranked_run(job.min_trades, job.objective)} in that slice", field="dataset"
        )
    raise ApplicationError(
        "no such slice in the job (dataset must be one of its datasets, group one of its group "
        "values)",
        field="dataset" if dataset_id is not None else "group",
    )


def job_apply_best(*, job: OptimizationJob, user, dataset_id=None, group=None, **kwargs) -> dict:
    return run_apply_to_production(
        run=job_best_run_for(job=job, dataset_id=dataset_id, group=group), user=user, **kwargs
    )


def strategy_config_restore(
    *,
    strategy: str,
    symbol: str,
    timeframe: str,
    pattern: str = "",
    version: int,
    user,
    reason: str = "",
    expected_version: int | None = None,
    source: str = "api",
) -> dict:
    """Make an earlier version current again: written as a new version (a change like any
    other, audited). Only the permission and the version gates apply: a rollback must work
    even when the strategy's stage has dropped."""
    permission_check(user)
    reason = _reason_check(reason)
    target = {
        "strategy": strategy,
        "symbol": symbol,
        "timeframe": timeframe,
        "pattern": pattern or "",
    }
    current = strategy_config_current(**target)
    if current is None:
        raise ApplicationError("no production parameters for that key yet", status=404)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ApplicationError(
            f"version must be a version number, got {version!r}", field="version"
        )
    old = StrategyConfig.objects.filter(**target, version=version).first()
    if old is None:
        raise ApplicationError(
            f"there is no version {version} (current is {current.version})", field="version"
        )  # noqa: E501
    base = _version_check(current.version, expected_version)
    with transaction.atomic():
        config = _write_version(
            target=target, base_version=base, params=old.params, user=user,
            note=reason or f"restored version {version}",
        )  # fmt: skip
        change = ParameterChange.objects.create(
            **target, kind=ParameterChange.Kind.RESTORE, from_version=base, to_version=base + 1,
            old_params=current.params, new_params=old.params, config=config, reason=reason,
            source=source, user=user,
        )  # fmt: skip
    return {"ok": True, "applied": True, **target, "version": config.version,
            "restored_version": version, "params": config.params, "change": change.id}  # fmt: skip


def strategy_params_validate(strategy: str, params: Any) -> dict:
    """A full, coerced parameter set of ``strategy`` (defaults filled in), or a 400 naming the
    offending parameter: unknown names, wrong types, out-of-bounds values, broken constraints."""
    if strategy not in STRATEGIES:
        raise ApplicationError(f"unknown strategy {strategy!r}", field="strategy")
    space = get_strategy(strategy).parameter_space()
    if not isinstance(params, dict):
        raise ApplicationError(
            'params must be an object of parameter values, e.g. {"fast": 10}', field="params"
        )
    try:
        validated = space.validate_params(params)
    except ParameterError as exc:
        raise ApplicationError(str(exc), field="params") from None
    broken = space.check_constraints(validated)
    if broken:
        raise ApplicationError(broken, field="params")
    return validated


def strategy_config_add(
    *,
    strategy: str,
    symbol: str,
    timeframe: str,
    pattern: str = "",
    params: Any,
    user,
    note: str = "",
    expected_version: int | None = None,
    source: str = "admin",
) -> StrategyConfig:
    """Write hand-chosen parameters as the next production version (Django admin's add form).
    The same gates as a restore: the permission and the version; the parameters must be a
    valid set for the strategy. Audited as a ParameterChange of kind ``manual``."""
    permission_check(user)
    note = _reason_check(note)
    params = strategy_params_validate(strategy, params)
    for name, value in (("symbol", symbol), ("timeframe", timeframe)):
        if not isinstance(value, str) or not value.strip():
            raise ApplicationError(f"{name} is required (text)", field=name)
    target = {"strategy": strategy, "symbol": symbol, "timeframe": timeframe,
              "pattern": pattern or ""}  # fmt: skip
    current = strategy_config_current(**target)
    base = _version_check(current.version if current else 0, expected_version)
    with transaction.atomic():
        config = _write_version(target=target, base_version=base, params=params, user=user,
                                note=note)  # fmt: skip
        ParameterChange.objects.create(
            **target, kind=ParameterChange.Kind.MANUAL, from_version=base, to_version=base + 1,
            old_params=current.params if current else None, new_params=params, config=config,
            reason=note, source=source, user=user,
        )  # fmt: skip
    return config
