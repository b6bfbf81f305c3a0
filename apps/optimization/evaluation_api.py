"""REST API of the evaluation layer: Monte Carlo / walk-forward jobs, evaluation, approval.

POST /api/jobs/monte_carlo/            {"run": id, "sims", "trades_per_sim", "mode", "seed"}
POST /api/jobs/walk_forward/           {"job": sweep id} or {"strategy", "dataset",
                                        "parameter_grid", ...}; + n_splits, train_frac,
                                        test_frac, window
GET  /api/jobs/{id}/evaluation/        results of the job's kind, overfitting, latest approval
POST /api/jobs/{id}/evaluation/        evaluate the job's run for approval (stored)
POST /api/runs/{id}/stress/            stress test of a run (not stored)
GET  /api/strategies/{key}/approval/   latest approval and history of a strategy
POST /api/strategies/{key}/approval/   {"run": id}: evaluate that run (stored)

Thin views: parse, check visibility (outsiders get 404), call one service, serialize.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.optimization import evaluation_jobs, selectors
from apps.optimization.api import JobSerializer
from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.strategies import approval_services
from apps.strategies.models import StrategyApproval
from backtestlab.engine.evaluation import stress
from backtestlab.engine.evaluation.psychology import REACHABLE_RANGE
from backtestlab.engine.strategies import STRATEGIES
from backtestlab.errors import ApplicationError

HISTORY_SIZE = 20


def _job(request, pk: int) -> OptimizationJob:
    return get_object_or_404(selectors.jobs_visible_to(request.user), id=pk)


def _run(request, run_id) -> OptimizationRun:
    if isinstance(run_id, bool) or not isinstance(run_id, int):
        raise ApplicationError(f"run must be a run id (integer), got {run_id!r}", field="run")
    return get_object_or_404(
        OptimizationRun.objects.select_related("job", "dataset"),
        id=run_id,
        job__in=selectors.jobs_visible_to(request.user),
    )


def _opt(data, name, default=None):
    value = data.get(name, default)
    return default if value is None else value


def job_evaluation_data(job: OptimizationJob) -> dict:
    """What every surface shows of a job's evaluation (one function for page and API)."""
    latest = StrategyApproval.objects.filter(job=job).order_by("-created_at", "-id").first()
    evaluation = job.evaluation or {}
    data = {
        "ok": True,
        "job": job.id,
        "kind": job.kind,
        "status": job.status,
        "options": {k: v for k, v in (job.options or {}).items() if k != "returns"},
        "approval": approval_services.approval_as_dict(latest),
        "psychology_reachable_range": list(REACHABLE_RANGE),
    }
    if job.kind == OptimizationJob.Kind.GRID:
        data["overfitting"] = (
            evaluation_jobs.job_overfitting(job=job) if job.status == "succeeded" else None
        )
    else:
        data["result"] = {k: v for k, v in evaluation.items() if k != "overfitting"} or None
    return data


class MonteCarloJobCreateView(APIView):
    @extend_schema(request=None, responses={201: JobSerializer})
    def post(self, request):
        d = request.data
        run = _run(request, d.get("run"))
        job = evaluation_jobs.monte_carlo_job_create(
            user=request.user,
            run=run,
            sims=_opt(d, "sims", 10_000),
            trades_per_sim=d.get("trades_per_sim"),
            mode=_opt(d, "mode", "bootstrap"),
            seed=d.get("seed"),
            name=_opt(d, "name", ""),
        )
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


class WalkForwardJobCreateView(APIView):
    @extend_schema(request=None, responses={201: JobSerializer})
    def post(self, request):
        d = request.data
        options = {
            "n_splits": _opt(d, "n_splits", 5),
            "train_frac": _opt(d, "train_frac", 0.7),
            "test_frac": _opt(d, "test_frac", 0.3),
            "window": _opt(d, "window", "rolling"),
            "name": _opt(d, "name", ""),
        }
        if d.get("job") is not None:
            source = _job(request, d["job"]) if isinstance(d["job"], int) else None
            if source is None:
                raise ApplicationError("job must be a sweep's id (integer)", field="job")
            job = evaluation_jobs.walk_forward_job_from_sweep(
                user=request.user, job=source, **options
            )
        else:
            job = evaluation_jobs.walk_forward_job_create(
                user=request.user,
                strategy=d.get("strategy"),
                dataset_id=d.get("dataset"),
                parameter_grid=d.get("parameter_grid"),
                objective=_opt(d, "objective", "sharpe"),
                costs=d.get("costs"),
                date_from=d.get("date_from"),
                date_to=d.get("date_to"),
                **options,
            )
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


class JobEvaluationView(APIView):
    @extend_schema(request=None, responses={200: dict})
    def get(self, request, pk: int):
        return Response(job_evaluation_data(_job(request, pk)))

    @extend_schema(request=None, responses={201: dict})
    def post(self, request, pk: int):
        job = _job(request, pk)
        approval = approval_services.job_evaluate(job=job, trigger="api", user=request.user)
        return Response(
            {"ok": True, "approval": approval_services.approval_as_dict(approval)},
            status=status.HTTP_201_CREATED,
        )


class RunStressView(APIView):
    @extend_schema(request=None, responses={200: dict})
    def post(self, request, pk: int):
        run = _run(request, pk)
        strategy, ctx, costs, _result = evaluation_jobs.run_backtest(run)
        objective = request.data.get("objective") or run.job.objective
        from apps.optimization.services import objective_validate

        objective = objective_validate(objective)
        res = stress.stress_test(strategy, ctx, run.params, costs, objective=objective)
        cfg = approval_services.approval_config_current()
        cfg = cfg.as_engine() if cfg else approval_services.engine_approval.ApprovalConfig()
        ok = res.passed(
            min_fraction=cfg.stress_min_fraction,
            min_fraction_combined=cfg.stress_min_fraction_combined,
        )
        return Response(
            evaluation_jobs._clean(
                {"ok": True, "run": run.id, "stress_test_ok": ok, **res.as_dict()}
            )  # fmt: skip
        )


class StrategyApprovalView(APIView):
    def _strategy(self, key: str) -> str:
        if key not in STRATEGIES:
            raise ApplicationError(f"unknown strategy {key!r}", field="strategy", status=404)
        return key

    @extend_schema(request=None, responses={200: dict})
    def get(self, request, key: str):
        key = self._strategy(key)
        history = list(approval_services.approvals_visible(request.user, key)[:HISTORY_SIZE])
        return Response(
            {
                "ok": True,
                "strategy": key,
                "latest": approval_services.approval_as_dict(history[0] if history else None),
                "history": [approval_services.approval_as_dict(a) for a in history],
            }
        )

    @extend_schema(request=None, responses={201: dict})
    def post(self, request, key: str):
        key = self._strategy(key)
        run = _run(request, request.data.get("run"))
        if run.job.strategy != key:
            raise ApplicationError(
                f"run {run.id} belongs to strategy {run.job.strategy}, not {key}", field="run"
            )
        approval = approval_services.strategy_evaluate(run=run, trigger="api", user=request.user)
        return Response(
            {"ok": True, "approval": approval_services.approval_as_dict(approval)},
            status=status.HTTP_201_CREATED,
        )
