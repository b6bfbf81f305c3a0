"""REST API of a job's results (heatmap, sensitivity, run detail, compare, export).

Thin views over the selectors in ``apps/optimization/selectors/``; every job goes through
``job_get_for_user`` (404 for outsiders) and bad query parameters answer 400 in the one error shape.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.optimization.api import RunSerializer
from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.optimization.selectors.compare import compare_ids_parse, jobs_compare
from apps.optimization.selectors.export import job_export_csv_lines, job_export_json_chunks
from apps.optimization.selectors.heatmap import (
    HEATMAP_AGGS,
    HEATMAP_VIEWS,
    heatmap_options,
    job_heatmap,
)
from apps.optimization.selectors.jobs import job_get_for_user, run_get_for_user
from apps.optimization.selectors.runs import (
    MAX_CURVE_POINTS,
    MIN_CURVE_POINTS,
    run_backtest_detail,
)
from apps.optimization.selectors.sensitivity import job_sensitivity
from backtestlab.api import MetricField, int_schema
from backtestlab.engine.metrics import METRIC_NAMES
from backtestlab.errors import ApplicationError
from backtestlab.inputs import MAX_ID, whole_number


def _no_empty_values(request) -> None:
    """An empty query value is refused, as the schema's enums say (a page form may send "" for
    "the default"; an API client leaves the parameter out)."""
    for key, value in request.query_params.items():
        if value == "":
            raise ApplicationError(
                f"{key} is empty; leave it out for the default or send a value", field=key
            )


def _check_query(request, allowed: tuple[str, ...]) -> None:
    _no_empty_values(request)
    for key in request.query_params:
        if key not in allowed:
            raise ApplicationError(
                f"unknown query parameter {key!r}; allowed: {', '.join(allowed) or 'none'}",
                field=key,
            )


AXIS = inline_serializer(
    "HeatmapAxis",
    {
        "name": serializers.CharField(),
        "values": serializers.ListField(child=serializers.JSONField()),
    },
)
SLICE = inline_serializer(
    "ResultSlice",
    {
        "dataset": serializers.IntegerField(),
        "dataset_name": serializers.CharField(),
        "symbol": serializers.CharField(),
        "timeframe": serializers.CharField(),
        "group": serializers.CharField(help_text="group_by values joined by '/', '' if none"),
        "group_params": serializers.DictField(child=serializers.JSONField()),
    },
)
HEATMAP = inline_serializer(
    "JobHeatmap",
    {
        "job": serializers.IntegerField(),
        "status": serializers.CharField(),
        "x": AXIS,
        "y": AXIS,
        "metric": serializers.CharField(),
        "metric_label": serializers.CharField(),
        "view": serializers.ChoiceField(choices=HEATMAP_VIEWS),
        "higher_is_better": serializers.BooleanField(),
        "agg": serializers.ChoiceField(choices=HEATMAP_AGGS),
        "slice": SLICE,
        "fixed": serializers.DictField(child=serializers.JSONField()),
        "aggregated": serializers.ListField(child=serializers.CharField()),
        "cells": serializers.ListField(
            child=serializers.ListField(child=serializers.JSONField(allow_null=True)),
            help_text="rows follow y.values, columns x.values; each {value, runs} or null",
        ),
        "best": serializers.JSONField(allow_null=True, help_text="{xi, yi, x, y, value, runs}"),
        "min": MetricField(allow_null=True),
        "max": MetricField(allow_null=True),
        "runs": serializers.IntegerField(),
        "query": serializers.DictField(child=serializers.CharField()),
    },
)


class JobHeatmapView(APIView):
    @extend_schema(
        summary="Parameter heatmap of a job",
        parameters=[
            OpenApiParameter("x", str, description="column parameter (default: 2nd varying)"),
            OpenApiParameter("y", str, description="row parameter (default: 1st varying)"),
            OpenApiParameter(
                "metric", str, enum=list(METRIC_NAMES), description="default: the job's objective"
            ),  # fmt: skip
            OpenApiParameter(
                "agg",
                str,
                enum=list(HEATMAP_AGGS),
                description="how the other parameters are aggregated",
            ),  # fmt: skip
            OpenApiParameter(
                "fixed.<parameter>",
                str,
                description="fix a parameter at one of its values instead of aggregating "
                "(e.g. fixed.tp_method=fixed_rr); repeat per parameter",
            ),
            OpenApiParameter(
                "view",
                str,
                enum=list(HEATMAP_VIEWS),
                description="metric (default): each run's value; neighbourhood: each ranked "
                "run's worst objective over itself and its one-step grid neighbours",
            ),  # fmt: skip
            OpenApiParameter("dataset", int, description="slice: one of the job's datasets"),
            OpenApiParameter("group", str, description="slice: a group_by value, e.g. imbalance"),
        ],
        responses=HEATMAP,
    )
    def get(self, request, pk: int):
        _no_empty_values(request)
        job = job_get_for_user(request.user, pk)
        options = heatmap_options(job, request.query_params)
        return Response(job_heatmap(job=job, options=options).as_dict())


SENSITIVITY = inline_serializer(
    "JobSensitivity",
    {
        "job": serializers.IntegerField(),
        "metric": serializers.CharField(),
        "metric_label": serializers.CharField(),
        "run": serializers.JSONField(allow_null=True, help_text="{id, dataset, params, value}"),
        "parameters": serializers.ListField(
            child=inline_serializer(
                "SensitivityParameter",
                {
                    "name": serializers.CharField(),
                    "points": serializers.ListField(
                        child=serializers.JSONField(),
                        help_text="{value, metric, run_id, is_run, n_trades, ranked, skipped}: "
                        "skipped = the combination breaks a constraint and was never run",
                    ),
                    "neighbour_drop_pct": MetricField(allow_null=True),
                },
            )
        ),
    },
)


class JobSensitivityView(APIView):
    @extend_schema(
        summary="Parameter sensitivity around the best run (or a given run)",
        parameters=[
            OpenApiParameter("metric", str, enum=list(METRIC_NAMES)),
            OpenApiParameter(
                "run",
                int_schema(1, MAX_ID),
                description="a run of this job (default: the best)",
            ),
        ],
        responses=SENSITIVITY,
    )
    def get(self, request, pk: int):
        _check_query(request, ("metric", "run", "format"))
        job = job_get_for_user(request.user, pk)
        run = None
        raw = request.query_params.get("run")
        if raw is not None:
            run_id = whole_number(raw)
            if run_id is None:
                raise ApplicationError(f"run must be a run id, got {raw!r}", field="run")
            run = OptimizationRun.objects.filter(job=job, id=run_id).first()
            if run is None:
                raise ApplicationError(f"run {raw} is not a run of job {job.id}", field="run")
        metric = request.query_params.get("metric") or None
        return Response(job_sensitivity(job=job, metric=metric, run=run))


TRADE = inline_serializer(
    "Trade",
    {
        "entry_time": serializers.IntegerField(help_text="epoch seconds"),
        "exit_time": serializers.IntegerField(help_text="epoch seconds"),
        "entry_price": serializers.FloatField(),
        "exit_price": serializers.FloatField(),
        "side": serializers.ChoiceField(choices=["long", "short"]),
        "pnl_pct": serializers.FloatField(),
        "reason": serializers.CharField(),
    },
)
OPEN_POSITION = inline_serializer(
    "OpenPosition",
    {
        "entry_time": serializers.IntegerField(help_text="epoch seconds"),
        "mark_time": serializers.IntegerField(help_text="epoch seconds: the last bar"),
        "entry_price": serializers.FloatField(),
        "mark_price": serializers.FloatField(help_text="the last close (no exit costs)"),
        "side": serializers.ChoiceField(choices=["long", "short"]),
        "unrealised_pnl_pct": serializers.FloatField(),
    },
    allow_null=True,
    help_text="The position still open at the last bar, marked there: not a closed trade",
)
RUN_DETAIL = inline_serializer(
    "RunDetail",
    {
        "run": serializers.IntegerField(),
        "job": serializers.IntegerField(),
        "strategy": serializers.CharField(),
        "dataset": serializers.JSONField(),
        "date_from": serializers.DateTimeField(allow_null=True),
        "date_to": serializers.DateTimeField(allow_null=True),
        "costs": serializers.DictField(child=serializers.FloatField()),
        "params": serializers.DictField(child=serializers.JSONField()),
        "metrics": serializers.DictField(child=MetricField(allow_null=True)),
        "initial_equity": serializers.FloatField(),
        "bars": serializers.IntegerField(),
        "curve": inline_serializer(
            "RunCurve",
            {
                "time": serializers.ListField(child=serializers.IntegerField()),
                "equity": serializers.ListField(child=serializers.FloatField()),
                "drawdown_pct": serializers.ListField(child=serializers.FloatField()),
            },
        ),
        "trades": serializers.ListField(child=TRADE, help_text="the closed trades"),
        "open_position": OPEN_POSITION,
    },
)


class RunDetailView(APIView):
    @extend_schema(
        summary="Equity curve, drawdown, trades and metrics of a run (recomputed on demand)",
        parameters=[
            OpenApiParameter(
                "points",
                int_schema(MIN_CURVE_POINTS, MAX_CURVE_POINTS),
                description=f"curve points (default {MAX_CURVE_POINTS})",
            )
        ],
        responses=RUN_DETAIL,
    )
    def get(self, request, pk: int):
        _check_query(request, ("points", "format"))
        run = run_get_for_user(request.user, pk)
        raw = request.query_params.get("points", str(MAX_CURVE_POINTS))
        points = whole_number(raw)
        if points is None or not MIN_CURVE_POINTS <= points <= MAX_CURVE_POINTS:
            raise ApplicationError(
                f"points must be a whole number from {MIN_CURVE_POINTS} to {MAX_CURVE_POINTS}, "
                f"got {raw!r}",
                field="points",
            )
        if run.status != OptimizationRun.Status.SUCCEEDED:
            raise ApplicationError(
                f"run {run.id} failed, so it has no equity curve: {run.error}",
                field="run",
                status=409,
            )
        return Response(run_backtest_detail(run, max_points=points))


COMPARE = inline_serializer(
    "JobComparison",
    many=True,
    fields={
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "strategy": serializers.CharField(),
        "status": serializers.CharField(),
        "objective": serializers.CharField(),
        "best_run": RunSerializer(allow_null=True),
        "curve": serializers.JSONField(
            allow_null=True, help_text="{time: [epoch s], return_pct: [...]} of the best run"
        ),
    },
)


class JobsCompareView(APIView):
    @extend_schema(
        summary="2 to 4 jobs side by side: best parameters, metrics, equity of the best runs",
        parameters=[OpenApiParameter("ids", str, required=True, description="job ids, e.g. 3,7")],
        responses=COMPARE,
    )
    def get(self, request):
        _check_query(request, ("ids", "format"))
        ids = compare_ids_parse(request.query_params.getlist("ids"))
        entries = jobs_compare(user=request.user, ids=ids)
        return Response(
            [
                {
                    "id": e["id"],
                    "name": e["name"],
                    "strategy": e["strategy"],
                    "status": e["status"],
                    "objective": e["objective"],
                    "best_run": RunSerializer(e["best_run"]).data if e["best_run"] else None,
                    "curve": e["curve"],
                }
                for e in entries
            ]
        )


EXPORT_FORMATS = ("csv", "json")


def export_csv_response(job: OptimizationJob) -> StreamingHttpResponse:
    """The CSV export as a streamed download (the lab page and the API both answer this)."""
    response = StreamingHttpResponse(
        job_export_csv_lines(job), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="job-{job.id}-runs.csv"'
    return response


class JobExportView(APIView):
    """Streams every run; the response never passes through a DRF renderer (errors do)."""

    def perform_content_negotiation(self, request, force=False):
        # ``format`` selects the export, not a DRF renderer; errors are always JSON.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        summary="Every run of a job, streamed as CSV or as a JSON array",
        parameters=[OpenApiParameter("format", str, enum=list(EXPORT_FORMATS))],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            # a JSON array of run objects
            (200, "application/json"): {"type": "array", "items": {"type": "object"}},
        },
    )
    def get(self, request, pk: int):
        _check_query(request, ("format",))
        job = job_get_for_user(request.user, pk)
        fmt = request.query_params.get("format", "csv")
        if fmt not in EXPORT_FORMATS:
            raise ApplicationError(
                f"format must be one of {', '.join(EXPORT_FORMATS)}; got {fmt!r}", field="format"
            )
        if fmt == "csv":
            return export_csv_response(job)
        response = StreamingHttpResponse(
            job_export_json_chunks(job), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="job-{job.id}-runs.json"'
        return response
