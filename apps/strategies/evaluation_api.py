"""REST API of the evaluation layer: Monte Carlo / walk-forward jobs, evaluation, approval.

POST /api/jobs/monte_carlo/            {"run": id, "sims", "trades_per_sim", "mode", "seed",
                                        "name"}
POST /api/jobs/walk_forward/           {"job": sweep id} or {"strategy", "dataset",
                                        "parameter_grid", ...}; + n_splits, train_frac,
                                        test_frac, window, name
GET  /api/jobs/{id}/evaluation/        results of the job's kind, overfitting, latest approval
POST /api/jobs/{id}/evaluation/        evaluate the job's run for approval (stored)
POST /api/runs/{id}/stress/            stress test of a run (not stored)
GET  /api/strategies/{key}/approval/   latest approval and history of a strategy
POST /api/strategies/{key}/approval/   {"run": id}: evaluate that run (stored)

The bodies are documented by the *_BODY serializers below (for /api/docs/); the services
validate them. Bodies must be JSON objects; NaN/Infinity reach validation, which names the
field.

Thin views: parse, check visibility (outsiders get 404), call one service, serialize.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.optimization.api import JobSerializer
from apps.optimization.gateway import json_safe, run_backtest
from apps.optimization.selectors.jobs import job_get_for_user, run_get_for_user
from apps.optimization.services.monte_carlo import (
    MAX_PATH_STEPS,
    MAX_SIMS,
    MAX_TRADES_PER_SIM,
    monte_carlo_job_create,
)
from apps.optimization.services.validation import objective_validate
from apps.optimization.services.walk_forward import (
    walk_forward_job_create,
    walk_forward_job_from_sweep,
)
from apps.strategies.selectors.approvals import (
    approval_as_dict,
    approval_config_current,
    approvals_visible,
)
from apps.strategies.selectors.evaluation import job_evaluation_data
from apps.strategies.services import approval as approval_services
from backtestlab.api import body_object
from backtestlab.engine.evaluation import monte_carlo as mc
from backtestlab.engine.evaluation import stress, walk_forward
from backtestlab.engine.metrics import METRICS
from backtestlab.engine.strategies import STRATEGIES
from backtestlab.errors import ApplicationError
from backtestlab.parsers import NonStrictJSONParser

HISTORY_SIZE = 20
OBJECTIVES = [name for name, info in METRICS.items() if info.objective]
# Taken from the sweep when walk-forward starts from {"job": id}; refused alongside it.
SWEEP_FIELDS = ("strategy", "dataset", "parameter_grid", "objective", "costs", "date_from",
                "date_to")  # fmt: skip

# Request bodies, as the services accept them (null = the default, like leaving it out).
_RUN_ID = serializers.IntegerField(
    min_value=1, max_value=2**63 - 1, help_text="a succeeded run of a job you can see"
)
_NAME = serializers.CharField(
    required=False, allow_blank=True, allow_null=True, default="",
    help_text="the new job's name (cut to 100 characters); blank: one is made up",
)  # fmt: skip
MONTE_CARLO_BODY = inline_serializer(
    "MonteCarloJobRequest",
    {
        "run": _RUN_ID,
        "sims": serializers.IntegerField(
            required=False,
            allow_null=True,
            default=10_000,
            min_value=1,
            max_value=MAX_SIMS,
            help_text=f"simulated paths; sims x trades_per_sim at most {MAX_PATH_STEPS:,}",
        ),  # fmt: skip
        "trades_per_sim": serializers.IntegerField(
            required=False,
            allow_null=True,
            default=None,
            min_value=0,
            max_value=MAX_TRADES_PER_SIM,
            help_text="trades per path; null or 0: the run's number of trades (shuffle: at "
            "most that)",
        ),  # fmt: skip
        "mode": serializers.ChoiceField(
            choices=list(mc.MODES),
            required=False,
            allow_null=True,
            default="bootstrap",
            help_text="bootstrap draws trades with replacement, shuffle reorders them",
        ),  # fmt: skip
        "seed": serializers.IntegerField(
            required=False,
            allow_null=True,
            default=None,
            min_value=0,
            max_value=2**63 - 1,
            help_text="null: a random seed (stored on the job, so it can be reproduced)",
        ),  # fmt: skip
        "name": _NAME,
    },
)
WALK_FORWARD_BODY = inline_serializer(
    "WalkForwardJobRequest",
    {
        "job": serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=1,
            max_value=2**63 - 1,
            help_text="a grid sweep's id: its strategy, grid, objective, costs, dates and every "
            "dataset are used (folds per dataset). Without it, give strategy, dataset and "
            "parameter_grid",
        ),  # fmt: skip
        "strategy": serializers.CharField(required=False, help_text="a strategy key"),
        "dataset": serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=2**63 - 1,
            help_text="a dataset of the strategy's data kind",
        ),  # fmt: skip
        "parameter_grid": serializers.DictField(
            child=serializers.JSONField(),
            required=False,
            help_text="parameter name -> list of values, or a range {start, stop, step}",
        ),  # fmt: skip
        "objective": serializers.ChoiceField(
            choices=OBJECTIVES,
            required=False,
            allow_null=True,
            default="sharpe",
            help_text="the metric each train window is optimised on",
        ),  # fmt: skip
        "costs": serializers.DictField(
            child=serializers.FloatField(),
            required=False,
            allow_null=True,
            help_text="commission_pct, slippage_pct (percent per fill), initial_equity",
        ),  # fmt: skip
        "date_from": serializers.CharField(
            required=False,
            allow_null=True,
            allow_blank=True,
            help_text="ISO-8601 date or datetime, e.g. 2023-06-01",
        ),  # fmt: skip
        "date_to": serializers.CharField(
            required=False,
            allow_null=True,
            allow_blank=True,
            help_text="ISO-8601 date or datetime, e.g. 2023-12-31",
        ),  # fmt: skip
        "n_splits": serializers.IntegerField(
            required=False,
            allow_null=True,
            default=5,
            min_value=1,
            max_value=50,
            help_text="number of folds (each needs at least 2 bars of test window)",
        ),  # fmt: skip
        "train_frac": serializers.FloatField(
            required=False,
            allow_null=True,
            default=0.7,
            min_value=0,
            max_value=1,
            help_text="train share of a fold, strictly between 0 and 1; "
            "train_frac + test_frac must be 1",
        ),  # fmt: skip
        "test_frac": serializers.FloatField(
            required=False,
            allow_null=True,
            default=0.3,
            min_value=0,
            max_value=1,
            help_text="test share of a fold, strictly between 0 and 1",
        ),  # fmt: skip
        "window": serializers.ChoiceField(
            choices=list(walk_forward.WINDOW_MODES),
            required=False,
            allow_null=True,
            default="rolling",
            help_text="rolling: fixed-length train windows; anchored: train from the start",
        ),  # fmt: skip
        "pick": serializers.ChoiceField(
            choices=list(walk_forward.PICKS),
            required=False,
            default="objective",
            help_text="what each fold keeps from its train window: the best objective, or "
            "robust: the best neighbourhood (worst objective one grid step around)",
        ),  # fmt: skip
        "name": _NAME,
    },
)
STRESS_BODY = inline_serializer(
    "StressTestRequest",
    {
        "objective": serializers.ChoiceField(
            choices=OBJECTIVES,
            required=False,
            allow_null=True,
            allow_blank=True,
            help_text="the metric compared under stress; null or blank: the run's job's",
        ),  # fmt: skip
    },
)
APPROVAL_BODY = inline_serializer(
    "StrategyApprovalRequest",
    {"run": serializers.IntegerField(
        min_value=1, max_value=2**63 - 1,
        help_text="a run of a job of this strategy: its evaluation is stored",
    )},
)  # fmt: skip


def _opt(data, name, default=None):
    value = data.get(name, default)
    return default if value is None else value


class MonteCarloJobCreateView(APIView):
    # NaN/Infinity reach validation, which names the field (the strict parser cannot).
    parser_classes = [NonStrictJSONParser]

    @extend_schema(summary="Start a Monte Carlo job over a run's trades",
                   request=MONTE_CARLO_BODY, responses={201: JobSerializer})  # fmt: skip
    def post(self, request):
        d = body_object(request, MONTE_CARLO_BODY)
        run = run_get_for_user(request.user, d.get("run"))
        job = monte_carlo_job_create(
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
    parser_classes = [NonStrictJSONParser]

    @extend_schema(summary="Start a walk-forward job (of a sweep, or of a strategy and grid)",
                   request=WALK_FORWARD_BODY, responses={201: JobSerializer})  # fmt: skip
    def post(self, request):
        d = body_object(request, WALK_FORWARD_BODY)
        options = {
            "n_splits": _opt(d, "n_splits", 5),
            "train_frac": _opt(d, "train_frac", 0.7),
            "test_frac": _opt(d, "test_frac", 0.3),
            "window": _opt(d, "window", "rolling"),
            "pick": _opt(d, "pick", "objective"),
            "name": _opt(d, "name", ""),
        }
        if d.get("job") is not None:
            source = d["job"]
            if isinstance(source, bool) or not isinstance(source, int):
                raise ApplicationError("job must be a sweep's id (integer)", field="job")
            for field in SWEEP_FIELDS:
                if field in d:
                    raise ApplicationError(
                        f"{field} comes from the sweep: give either job, or strategy, dataset "
                        "and parameter_grid",
                        field=field,
                    )
            source = job_get_for_user(request.user, source)
            job = walk_forward_job_from_sweep(user=request.user, job=source, **options)
        else:
            job = walk_forward_job_create(
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
        return Response(job_evaluation_data(job_get_for_user(request.user, pk)))

    @extend_schema(request=None, responses={201: dict})
    def post(self, request, pk: int):
        job = job_get_for_user(request.user, pk)
        approval = approval_services.job_evaluate(job=job, trigger="api", user=request.user)
        return Response(
            {"ok": True, "approval": approval_as_dict(approval)},
            status=status.HTTP_201_CREATED,
        )


class RunStressView(APIView):
    parser_classes = [NonStrictJSONParser]

    @extend_schema(summary="Stress-test a run (not stored)", request=STRESS_BODY,
                   responses={200: dict})  # fmt: skip
    def post(self, request, pk: int):
        run = run_get_for_user(request.user, pk)
        objective = body_object(request, STRESS_BODY).get("objective")
        objective = objective_validate(run.job.objective if objective in (None, "") else objective)
        strategy, ctx, costs, _result = run_backtest(run)
        res = stress.stress_test(strategy, ctx, run.params, costs, objective=objective)
        cfg = approval_config_current()
        cfg = cfg.as_engine() if cfg else approval_services.engine_approval.ApprovalConfig()
        ok = res.passed(
            min_fraction=cfg.stress_min_fraction,
            min_fraction_combined=cfg.stress_min_fraction_combined,
        )
        return Response(
            json_safe(
                {"ok": True, "run": run.id, "stress_test_ok": ok, **res.as_dict()}
            )  # fmt: skip
        )


class StrategyApprovalView(APIView):
    parser_classes = [NonStrictJSONParser]

    def _strategy(self, key: str) -> str:
        if key not in STRATEGIES:
            raise ApplicationError(f"unknown strategy {key!r}", field="strategy", status=404)
        return key

    @extend_schema(request=None, responses={200: dict})
    def get(self, request, key: str):
        key = self._strategy(key)
        history = list(approvals_visible(request.user, key)[:HISTORY_SIZE])
        return Response(
            {
                "ok": True,
                "strategy": key,
                "latest": approval_as_dict(history[0] if history else None),
                "history": [approval_as_dict(a) for a in history],
            }
        )

    @extend_schema(summary="Evaluate a run of the strategy for approval (stored)",
                   request=APPROVAL_BODY, responses={201: dict})  # fmt: skip
    def post(self, request, key: str):
        key = self._strategy(key)
        run = run_get_for_user(request.user, body_object(request, APPROVAL_BODY).get("run"))
        if run.job.strategy != key:
            raise ApplicationError(
                f"run {run.id} belongs to strategy {run.job.strategy}, not {key}", field="run"
            )
        approval = approval_services.strategy_evaluate(run=run, trigger="api", user=request.user)
        return Response(
            {"ok": True, "approval": approval_as_dict(approval)},
            status=status.HTTP_201_CREATED,
        )
