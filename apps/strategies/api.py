"""REST API of production parameters, risk configs and paper trading.

GET  /api/strategies/{key}/config?symbol=&timeframe=[&pattern=]   current params + version (bot)
GET  /api/strategies/{key}/config/history?symbol=&timeframe=[&pattern=]   ParameterChange rows
POST /api/strategies/{key}/config/restore  {symbol, timeframe, pattern?, version, reason?,
                                            expected_version?}
POST /api/runs/{id}/apply/           {dry_run?, reason?, expected_version?}
POST /api/jobs/{id}/apply_best/      {dataset?, group?, dry_run?, reason?, expected_version?}
GET  /api/strategies/{key}/risk      the risk limits (defaults when none stored)
PUT  /api/strategies/{key}/risk      {max_risk_per_trade?, max_risk_per_underlying?,
                                      max_new_trades_per_day?, enabled?}

Thin views: visibility first (outsiders get 404 for runs and jobs), then one service; the
services check the permissions (403) and the gates.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.optimization.api import RunSerializer, int_param
from apps.optimization.selectors.jobs import (
    job_best_per_dataset,
    job_best_runs,
    job_get_for_user,
    job_groups,
    run_get_for_user,
)
from apps.optimization.selectors.neighbourhood import RANKINGS
from apps.strategies.models import PaperBook, ParameterChange
from apps.strategies.selectors.best_table import job_best_table
from apps.strategies.selectors.configs import (
    parameter_changes_in_full,
    risk_config_as_dict,
    risk_config_for,
    strategy_config_current,
)
from apps.strategies.selectors.risk_checks import run_risk_check
from apps.strategies.services.apply import (
    job_apply_best,
    permission_check,
    run_apply_to_production,
    strategy_config_restore,
)
from apps.strategies.services.paper import paper_overview
from apps.strategies.services.risk_configs import risk_config_update, strategy_key_validate
from backtestlab.api import MetricField, body_object, int_schema
from backtestlab.errors import ApplicationError
from backtestlab.parsers import NonStrictJSONParser

HISTORY_SIZE = 50
BEST_LIMIT_MAX = 100  # runs per best table

APPLY_BODY = inline_serializer(
    "ApplyRequest",
    {
        "dry_run": serializers.BooleanField(required=False, default=False),
        "reason": serializers.CharField(required=False, allow_blank=True, max_length=2000),
        "expected_version": serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=0,
            help_text="The version you compared against (0 = none yet); another one is a 409",
        ),  # fmt: skip
    },
)
APPLY_BEST_BODY = inline_serializer(
    "ApplyBestRequest",
    {
        "dataset": serializers.IntegerField(required=False, help_text="one of the job's datasets"),
        "group": serializers.CharField(required=False, help_text="a group value, e.g. imbalance"),
        "dry_run": serializers.BooleanField(required=False, default=False),
        "reason": serializers.CharField(required=False, allow_blank=True, max_length=2000),
        "expected_version": serializers.IntegerField(required=False, allow_null=True, min_value=0),
    },
)
RESTORE_BODY = inline_serializer(
    "RestoreRequest",
    {
        "symbol": serializers.CharField(),
        "timeframe": serializers.CharField(),
        "pattern": serializers.CharField(required=False, allow_blank=True),
        "version": serializers.IntegerField(min_value=1),
        "reason": serializers.CharField(required=False, allow_blank=True, max_length=2000),
        "expected_version": serializers.IntegerField(required=False, allow_null=True, min_value=0),
    },
)
RISK_BODY = inline_serializer(
    "RiskConfigRequest",
    {
        "max_risk_per_trade": serializers.FloatField(required=False, min_value=0.0001, max_value=1),
        "max_risk_per_underlying": serializers.FloatField(
            required=False, min_value=0.0001, max_value=1
        ),
        "max_new_trades_per_day": serializers.IntegerField(
            required=False, min_value=0, max_value=1000
        ),
        "enabled": serializers.BooleanField(required=False),
    },
)
KEY_QUERY = [  # symbol and timeframe are required and not empty (a 400 naming them)
    OpenApiParameter("symbol", {"type": "string", "minLength": 1}, required=True),
    OpenApiParameter("timeframe", {"type": "string", "minLength": 1}, required=True),
    OpenApiParameter("pattern", str, description="the strategy's group value; default none"),
]


def _key_query(request) -> dict:
    q = request.query_params
    for name in ("symbol", "timeframe"):
        if not q.get(name):
            raise ApplicationError(f"{name} is required, e.g. ?symbol=BTC&timeframe=1h", field=name)
    return {"symbol": q["symbol"], "timeframe": q["timeframe"], "pattern": q.get("pattern", "")}


def _apply_kwargs(d: dict) -> dict:
    return {
        "dry_run": d.get("dry_run", False),
        "reason": d.get("reason", ""),
        "expected_version": d.get("expected_version"),
    }


class RunApplyView(APIView):
    parser_classes = [NonStrictJSONParser]

    @extend_schema(summary="Apply a run's parameters to production", request=APPLY_BODY,
                   responses={200: dict})  # fmt: skip
    def post(self, request, pk: int):
        run = run_get_for_user(request.user, pk)
        answer = run_apply_to_production(
            run=run,
            user=request.user,
            source="api",
            **_apply_kwargs(body_object(request, APPLY_BODY)),
        )
        return Response(answer)


class JobApplyBestView(APIView):
    parser_classes = [NonStrictJSONParser]

    @extend_schema(summary="Apply a job's best run to production", request=APPLY_BEST_BODY,
                   responses={200: dict})  # fmt: skip
    def post(self, request, pk: int):
        job = job_get_for_user(request.user, pk)
        d = body_object(request, APPLY_BEST_BODY)
        dataset = d.get("dataset")
        if dataset is not None and (isinstance(dataset, bool) or not isinstance(dataset, int)):
            raise ApplicationError("dataset must be a dataset id (integer)", field="dataset")
        group = d.get("group")
        if group is not None and not isinstance(group, str):
            raise ApplicationError("group must be text, e.g. imbalance", field="group")
        permission_check(request.user)
        answer = job_apply_best(
            job=job, user=request.user, dataset_id=dataset, group=group, source="api",
            **_apply_kwargs(d),
        )  # fmt: skip
        return Response(answer)


def change_as_dict(c: ParameterChange) -> dict:
    return {
        "id": c.id, "kind": c.kind, "dry_run": c.dry_run, "from_version": c.from_version,
        "to_version": c.to_version, "old_params": c.old_params, "new_params": c.new_params,
        "job": c.job_id, "run": c.run_id, "objective": c.objective, "old_value": c.old_value,
        "new_value": c.new_value, "improvement_pct": c.improvement_pct, "stage": c.stage,
        "reason": c.reason, "source": c.source, "user": c.user.username if c.user else None,
        "created_at": c.created_at,
    }  # fmt: skip


# What a user outside the author's team reads of a change: the parameters and the versions
# (who changed them, why, from which job and run stays with the team).
OUTSIDER_FIELDS = ("from_version", "to_version", "old_params", "new_params", "dry_run")


def change_as_outsider(c: ParameterChange) -> dict:
    return {name: getattr(c, name) for name in OUTSIDER_FIELDS}


class StrategyConfigView(APIView):
    @extend_schema(summary="Current production parameters (for the bot)", parameters=KEY_QUERY,
                   responses={200: dict})  # fmt: skip
    def get(self, request, key: str):
        key = strategy_key_validate(key)
        target = _key_query(request)
        config = strategy_config_current(key, **target)
        if config is None:
            raise ApplicationError(
                f"no production parameters for {key} {target['symbol']} {target['timeframe']} "
                f"{target['pattern']}".rstrip(),
                status=404,
            )
        return Response({"ok": True, "strategy": key, **target, "version": config.version,
                         "params": config.params, "updated_at": config.created_at})  # fmt: skip


class StrategyConfigHistoryView(APIView):
    @extend_schema(summary="Changes of production parameters (audit)", parameters=KEY_QUERY,
                   responses={200: dict})  # fmt: skip
    def get(self, request, key: str):
        key = strategy_key_validate(key)
        target = _key_query(request)
        changes = ParameterChange.objects.filter(strategy=key, **target)
        latest = list(changes.select_related("user")[:HISTORY_SIZE])
        in_full = parameter_changes_in_full(
            request.user, changes.filter(id__in=[c.id for c in latest])
        )
        rows = [change_as_dict(c) if c.id in in_full else change_as_outsider(c) for c in latest]
        return Response({"ok": True, "strategy": key, **target, "changes": rows})


class StrategyConfigRestoreView(APIView):
    parser_classes = [NonStrictJSONParser]

    @extend_schema(summary="Restore an earlier version (written as a new version)",
                   request=RESTORE_BODY, responses={200: dict})  # fmt: skip
    def post(self, request, key: str):
        key = strategy_key_validate(key)
        permission_check(request.user)
        d = body_object(request, RESTORE_BODY)
        for name in ("symbol", "timeframe"):
            if not isinstance(d.get(name), str) or not d.get(name):
                raise ApplicationError(f"{name} is required (text)", field=name)
        if not isinstance(d.get("pattern", ""), str):
            raise ApplicationError("pattern must be text", field="pattern")
        answer = strategy_config_restore(
            strategy=key, symbol=d["symbol"], timeframe=d["timeframe"],
            pattern=d.get("pattern", ""), version=d.get("version"), user=request.user,
            reason=d.get("reason", ""), expected_version=d.get("expected_version"), source="api",
        )  # fmt: skip
        return Response(answer)


class RunRiskView(APIView):
    @extend_schema(summary="A run's trades through its strategy's risk limits",
                   responses={200: dict})  # fmt: skip
    def get(self, request, pk: int):
        run = run_get_for_user(request.user, pk)
        return Response({"ok": True, **run_risk_check(run)})


class PaperView(APIView):
    @extend_schema(summary="Paper books: open positions, PnL and the risk veto log",
                   responses={200: dict})  # fmt: skip
    def get(self, request):
        return Response({"ok": True, "books": paper_overview(PaperBook.objects.order_by("id"))})


class StrategyRiskView(APIView):
    parser_classes = [NonStrictJSONParser]

    @extend_schema(summary="Risk limits of a strategy", responses={200: dict})
    def get(self, request, key: str):
        key = strategy_key_validate(key)
        return Response({"ok": True, **risk_config_as_dict(risk_config_for(key))})

    @extend_schema(summary="Change the risk limits (strategies.change_riskconfig)",
                   request=RISK_BODY, responses={200: dict})  # fmt: skip
    def put(self, request, key: str):
        obj = risk_config_update(
            strategy=key, data=body_object(request), user=request.user, source="api"
        )
        return Response({"ok": True, **risk_config_as_dict(obj)}, status=status.HTTP_200_OK)


# --- the best-parameter table (beside the production parameters) ----------------------------


class ProductionSerializer(serializers.Serializer):
    config_id = serializers.IntegerField()
    version = serializers.IntegerField()
    params = serializers.DictField(child=serializers.JSONField())
    metrics = serializers.DictField(child=MetricField(allow_null=True))
    value = MetricField(allow_null=True, help_text="the objective on this slice")
    error = serializers.CharField()
    created_at = serializers.DateTimeField()


class BestRowSerializer(RunSerializer):
    improvement_pct = serializers.FloatField(
        allow_null=True, help_text="objective vs production, in % of |production|"
    )
    neighbour_worst = MetricField(
        read_only=True,
        help_text="the worst objective of the run and its one-step grid neighbours (a "
        "neighbour that may not be ranked counts as the grid's worst); null while the job runs",
    )
    neighbour_mean = MetricField(
        read_only=True, help_text="the mean objective over the same neighbourhood"
    )

    class Meta(RunSerializer.Meta):
        fields = [
            *RunSerializer.Meta.fields,
            "improvement_pct",
            "neighbour_worst",
            "neighbour_mean",
        ]
        read_only_fields = fields


class BestSliceSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    group = serializers.CharField(help_text="group_by values joined by '/', '' if none")
    production = ProductionSerializer(allow_null=True, help_text="null: none yet")
    runs = BestRowSerializer(many=True)


def best_table_as_data(table: list[dict]) -> list[dict]:
    out = []
    for section in table:
        s = section["slice"]
        runs = []
        for row in section["rows"]:
            row["run"].improvement_pct = row["improvement_pct"]
            row["run"].neighbour_worst = row["neighbour_worst"]
            row["run"].neighbour_mean = row["neighbour_mean"]
            runs.append(BestRowSerializer(row["run"]).data)
        out.append(
            {
                "dataset": s.dataset.id,
                "symbol": s.dataset.symbol,
                "timeframe": s.dataset.timeframe,
                "group": s.group_label,
                "production": section["production"],
                "runs": runs,
            }
        )
    return out


class JobBestView(APIView):
    """The job's best runs and, per slice, its best-parameter table beside production."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "limit", int_schema(1, BEST_LIMIT_MAX), description="how many runs (default 10)"
            ),
            OpenApiParameter(
                "rank",
                {"type": "string", "enum": list(RANKINGS)},
                description="the table's order: by the objective (default) or robust (best "
                "neighbourhood worst, then mean)",
            ),
        ],
        responses=inline_serializer(
            "BestParameters",
            {
                "objective": serializers.CharField(),
                "rank": serializers.ChoiceField(choices=RANKINGS),
                "status": serializers.CharField(),
                "group_by": serializers.ListField(child=serializers.CharField()),
                "best": RunSerializer(many=True),
                "per_dataset": RunSerializer(many=True),
                "table": BestSliceSerializer(many=True),
            },
        ),
    )
    def get(self, request, pk: int):
        job = job_get_for_user(request.user, pk)
        limit = int_param(request, "limit", default=10, low=1, high=BEST_LIMIT_MAX)
        rank = request.query_params.get("rank", "objective")
        return Response(
            {
                "objective": job.objective,
                "status": job.status,
                # per_dataset holds the best run per dataset and per value of these parameters
                "group_by": list(job_groups(job)[0]),
                "best": RunSerializer(job_best_runs(job=job, limit=limit), many=True).data,
                "per_dataset": RunSerializer(job_best_per_dataset(job=job), many=True).data,
                # per (dataset, group): top runs beside the current production parameters
                "rank": rank,
                "table": best_table_as_data(job_best_table(job=job, limit=limit, rank=rank)),
            }
        )
