"""REST API under /api/: thin views that parse, call one service or selector, serialize."""

from __future__ import annotations

import logging

from django.db import models
from django.db.models import F, Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.market.models import Dataset
from apps.market.selectors import dataset_gaps
from apps.market.services import market_upload_import
from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.optimization.ranking import DEFAULT_MIN_TRADES, MAX_MIN_TRADES, run_unranked_reason
from apps.optimization.selectors.jobs import (
    jobs_visible_to,
)
from apps.optimization.services.jobs import job_cancel, job_copy, job_create, job_plan
from apps.optimization.services.validation import DESCRIPTION_MAX_LENGTH, setting
from backtestlab.api import PAGE_PARAMETERS, MetricField, fields_check, int_schema
from backtestlab.engine.metrics import METRIC_NAMES, METRICS
from backtestlab.engine.strategies import STRATEGIES
from backtestlab.errors import ApplicationError
from backtestlab.inputs import MAX_ID, whole_number
from backtestlab.parsers import NonStrictJSONParser

log = logging.getLogger(__name__)


# --- serializers -------------------------------------------------------------------------------


class DatasetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = [
            "id", "name", "symbol", "timeframe", "kind", "source", "seed",
            "start", "end", "rows", "checksum", "version", "supersedes",
        ]  # fmt: skip


class DatasetUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV, Parquet, Feather, Freqtrade JSON or Binance zip")
    symbol = serializers.CharField(required=False, allow_blank=True, max_length=20)
    timeframe = serializers.CharField(required=False, allow_blank=True, max_length=8)
    kind = serializers.ChoiceField(choices=["candles", "funding"], required=False)
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)


class ParameterSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    default = serializers.JSONField()
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    choices = serializers.ListField(child=serializers.JSONField())
    label = serializers.CharField()
    help = serializers.CharField()


class StrategySerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField()
    data_kind = serializers.CharField()
    parameters = ParameterSerializer(many=True)
    group_by = serializers.ListField(child=serializers.CharField())
    presets = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Named parameter grids (e.g. smc_zones: the seed's default and quick grids), "
        "usable as parameter_grid as they are",
    )


def strategy_as_dict(strategy) -> dict:
    return {
        "key": strategy.key,
        "label": strategy.label,
        "description": strategy.description,
        "data_kind": strategy.data_kind,
        "group_by": list(strategy.group_by),
        "timeframes": None if strategy.timeframes is None else list(strategy.timeframes),
        "companion_kinds": list(strategy.companion_kinds),
        "presets": getattr(strategy, "presets", {}),
        "constraints": [
            getattr(c, "rule", None) or (c.__doc__ or c.__name__).strip()
            for c in strategy.parameter_space().constraints
        ],
        "parameters": [
            {
                "name": p.name,
                "kind": p.kind,
                "default": p.default,
                "low": p.low,
                "high": p.high,
                "choices": list(p.choices),
                "label": p.label or p.name,
                "help": p.help,
                "role": p.role,
            }
            for p in strategy.parameter_space().params
        ],
    }


GRID_HELP = (
    "Parameter name -> list of values, or a range {start, stop, step} (stop inclusive). "
    "Parameters left out use their default. Combinations that break the strategy's "
    "constraints (e.g. fast < slow) are skipped, never run."
)


class JobCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=DESCRIPTION_MAX_LENGTH
    )
    strategy = serializers.CharField(max_length=50)
    datasets = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1
    )
    parameter_grid = serializers.DictField(help_text=GRID_HELP, child=serializers.JSONField())
    objective = serializers.ChoiceField(
        choices=[m for m, info in METRICS.items() if info.objective],
        default="sharpe",
        error_messages={
            "invalid_choice": '"{input}" is not an objective; choose one of '
            + ", ".join(m for m, info in METRICS.items() if info.objective)
        },
    )
    min_trades = serializers.IntegerField(
        min_value=1,
        max_value=MAX_MIN_TRADES,
        default=DEFAULT_MIN_TRADES,
        help_text="Runs with fewer closed trades are never ranked best, starred or applied",
    )
    date_from = serializers.DateTimeField(required=False, allow_null=True, default=None)
    date_to = serializers.DateTimeField(required=False, allow_null=True, default=None)
    costs = serializers.DictField(
        child=serializers.FloatField(),
        required=False,
        help_text="commission_pct, slippage_pct (percent per fill), initial_equity",
    )


class JobPlanRequestSerializer(serializers.Serializer):
    strategy = serializers.CharField(max_length=50)
    datasets = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1
    )
    parameter_grid = serializers.DictField(help_text=GRID_HELP, child=serializers.JSONField())


class SkippedBySerializer(serializers.Serializer):
    constraint = serializers.CharField(help_text="The strategy's constraint, e.g. fast < slow")
    combinations = serializers.IntegerField(help_text="Combinations per dataset breaking it")


class JobPlanSerializer(serializers.Serializer):
    combinations = serializers.IntegerField(help_text="Grid combinations per dataset")
    skipped = serializers.IntegerField(
        help_text="Combinations per dataset that break a constraint: never run"
    )
    skipped_by = SkippedBySerializer(many=True)
    runs_per_dataset = serializers.IntegerField()
    datasets = serializers.IntegerField()
    runs = serializers.IntegerField(help_text="Runs the job would store: per dataset × datasets")
    text = serializers.CharField(
        help_text='e.g. "900 combinations, 378 skipped by fast < slow, 522 runs"'
    )


class JobSerializer(serializers.ModelSerializer):
    progress_pct = serializers.FloatField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    datasets = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = OptimizationJob
        fields = [
            "id", "name", "description", "kind", "strategy", "datasets", "date_from", "date_to",
            "parameter_grid", "objective", "min_trades", "costs", "status", "is_active",
            "grid_combinations", "skipped_combinations", "total_runs",
            "completed_runs", "failed_runs", "progress_pct", "best_params", "best_run", "error",
            "created_by", "rerun_of", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    # Metrics: a number, null where undefined, "Infinity" for an unbounded ratio.
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.FloatField: MetricField,
    }
    unranked_reason = serializers.SerializerMethodField(
        help_text="Why the run may not be ranked best (fewer trades than the job's min_trades, "
        "failed, objective undefined); empty when it may"
    )

    class Meta:
        model = OptimizationRun
        fields = [
            "id", "job", "dataset", "grid_index", "params", "param_hash", "status", "error",
            *METRIC_NAMES, "unranked_reason", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_unranked_reason(self, run: OptimizationRun) -> str:
        return run_unranked_reason(run)


RUN_ORDERINGS = {"id", "grid_index", *METRIC_NAMES}
# Each ordering ascending or, with one "-" in front, descending ("--sharpe" is refused).
RUN_ORDERING_CHOICES = sorted(RUN_ORDERINGS) + sorted(f"-{name}" for name in RUN_ORDERINGS)


# --- views -------------------------------------------------------------------------------------


class DatasetViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Datasets; ``POST`` (multipart, needs the ``market.add_dataset`` permission) imports a
    file in any format ``manage.py import_candles`` takes; a dataset's page adds its gap
    report and the jobs (you may see) that use it."""

    queryset = Dataset.objects.all()
    serializer_class = DatasetSerializer
    parser_classes = [MultiPartParser, FormParser]

    def retrieve(self, request, *args, **kwargs):
        dataset = self.get_object()
        data = DatasetSerializer(dataset).data
        try:
            data["gaps"] = dataset_gaps(dataset)
        except ApplicationError as exc:
            data["gaps"] = None
            data["error"] = exc.message
        data["jobs"] = list(
            jobs_visible_to(request.user)
            .filter(Q(datasets=dataset) | Q(companions__companion=dataset))
            .distinct()
            .order_by("-id")
            .values("id", "name", "status")[:100]
        )
        return Response(data)

    @extend_schema(request=DatasetUploadSerializer, responses={201: DatasetSerializer})
    def create(self, request, *args, **kwargs):
        if not request.user.has_perm("market.add_dataset"):
            raise ApplicationError(
                "importing data needs the 'Can add dataset' permission; ask an admin",
                status=403,
            )
        form = DatasetUploadSerializer(data=request.data)
        fields_check(request.data, form.fields)
        form.is_valid(raise_exception=True)
        v = form.validated_data
        dataset = market_upload_import(
            upload=v["file"],
            symbol=v.get("symbol") or None,
            timeframe=v.get("timeframe") or None,
            kind=v.get("kind") or None,
            name=v.get("name") or None,
            max_bytes=setting("MAX_UPLOAD_MB") * 2**20,
        )
        return Response(
            {**DatasetSerializer(dataset).data, "gaps": dataset_gaps(dataset)},
            status=status.HTTP_201_CREATED,
        )


class StrategyListView(APIView):
    @extend_schema(responses=StrategySerializer(many=True))
    def get(self, request):
        return Response([strategy_as_dict(s) for s in STRATEGIES.values()])


class JobViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = JobSerializer
    queryset = OptimizationJob.objects.none()
    # NaN/Infinity reach validation, which names the field (the strict parser cannot).
    parser_classes = [NonStrictJSONParser, FormParser, MultiPartParser]

    def get_queryset(self):
        return jobs_visible_to(self.request.user).prefetch_related("datasets")

    @extend_schema(request=JobCreateSerializer, responses={201: JobSerializer})
    def create(self, request, *args, **kwargs):
        data = JobCreateSerializer(data=request.data)
        fields_check(request.data, data.fields)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        job = job_create(
            user=request.user,
            name=v["name"],
            description=v.get("description", ""),
            strategy=v["strategy"],
            dataset_ids=v["datasets"],
            parameter_grid=request.data.get("parameter_grid"),
            objective=v["objective"],
            min_trades=v["min_trades"],
            date_from=v.get("date_from"),
            date_to=v.get("date_to"),
            # raw, like the grid: the service is strict ("0.1" is not a number), DRF is not
            costs=request.data.get("costs"),
        )
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=JobPlanRequestSerializer,
        responses={200: JobPlanSerializer},
        description="What a sweep would run, before launching it: combinations, those skipped "
        "by the strategy's constraints, runs. Nothing is stored.",
    )
    @action(detail=False, methods=["post"])
    def plan(self, request):
        data = JobPlanRequestSerializer(data=request.data)
        fields_check(request.data, data.fields)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        return Response(
            job_plan(
                strategy=v["strategy"],
                dataset_ids=v["datasets"],
                parameter_grid=request.data.get("parameter_grid"),
            )
        )

    @extend_schema(request=None, responses={200: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = job_cancel(job=self.get_object())
        return Response(JobSerializer(job).data)

    @extend_schema(request=None, responses={201: JobSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        job = job_copy(job=self.get_object(), user=request.user, start=True, rerun=True)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=OptimizationRun.Status.values),
            OpenApiParameter("dataset", int_schema(1, MAX_ID), description="a dataset id"),
            OpenApiParameter(
                "ordering",
                str,
                enum=RUN_ORDERING_CHOICES,
                description="a metric, id or grid_index; prefix - for descending",
            ),
            *PAGE_PARAMETERS,
        ],
        responses=RunSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def runs(self, request, pk=None):
        job = self.get_object()
        runs = OptimizationRun.objects.filter(job=job).select_related("job")
        status_param = request.query_params.get("status")
        if status_param is not None:
            if status_param not in OptimizationRun.Status.values:
                raise ApplicationError(
                    f"status must be succeeded or failed, got {status_param!r}", field="status"
                )
            runs = runs.filter(status=status_param)
        if "dataset" in request.query_params:
            runs = runs.filter(
                dataset_id=int_param(request, "dataset", default=0, low=1, high=MAX_ID)
            )
        ordering = request.query_params.get("ordering", "grid_index")
        if ordering not in RUN_ORDERING_CHOICES:
            raise ApplicationError(
                f"cannot order by {ordering!r}; use one of {', '.join(sorted(RUN_ORDERINGS))} "
                "(one - in front for descending, e.g. -sharpe)",
                field="ordering",
            )
        name = ordering.removeprefix("-")
        if name in METRIC_NAMES:
            key = (
                F(name).desc(nulls_last=True)
                if ordering.startswith("-")
                else F(name).asc(nulls_last=True)
            )
            runs = runs.order_by(key, "id")
        else:
            runs = runs.order_by(ordering, "id")
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(RunSerializer(page, many=True).data)


def int_param(request, name: str, *, default: int, low: int, high: int) -> int:
    """A whole-number query parameter from ``low`` to ``high`` (``default`` when left out)."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = whole_number(raw)
    if value is None or not low <= value <= high:
        raise ApplicationError(
            f"{name} must be a whole number from {low} to {high}, got {raw!r}", field=name
        )
    return value
