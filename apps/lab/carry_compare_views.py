"""Funding carry, simple vs composite: the lab page and the API endpoint (thin interfaces over
:func:`apps.lab.carry_compare.carry_compare_run`)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.lab import carry_compare
from backtestlab.engine.strategies import get_strategy
from backtestlab.errors import ApplicationError
from backtestlab.inputs import whole_number
from backtestlab.parsers import NonStrictJSONParser

# --- page ------------------------------------------------------------------------------------


def _number(name: str, raw: str):
    try:
        return float(raw)
    except ValueError:
        raise ApplicationError(f"{name} must be a number, got {raw!r}", field=name) from None


def _kwargs_from_post(post) -> dict:
    dataset_id = whole_number(post.get("dataset", ""))
    if dataset_id is None:
        raise ApplicationError("pick a candle dataset", field="dataset")
    params = {}
    for name in carry_compare.PAGE_PARAMS:
        raw = post.get(name, "").strip()
        if raw:
            params[name] = _number(name, raw)
    costs = {}
    for name in ("commission_pct", "slippage_pct"):
        raw = post.get(name, "").strip()
        if raw:
            costs[name] = _number(name, raw)
    return {
        "dataset_id": dataset_id,
        "date_from": post.get("date_from") or None,
        "date_to": post.get("date_to") or None,
        "params": params,
        "costs": costs,
    }


def _form_context(data=None) -> dict:
    space = get_strategy(carry_compare.STRATEGY).parameter_space()
    data = data or {}
    return {
        "datasets": carry_compare.carry_datasets(),
        "data": data,
        "params": [
            {"param": space[name], "value": data.get(name, space[name].default)}
            for name in carry_compare.PAGE_PARAMS
        ],
    }


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def carry_compare_page(request):
    """GET: the form. POST: run both modes; HTMX gets the result fragment, others the page."""
    if request.method == "GET":
        return render(request, "lab/carry_compare.html", _form_context())
    context = _form_context(request.POST)
    status = 200
    try:
        result = carry_compare.carry_compare_run(**_kwargs_from_post(request.POST))
        context.update(
            result=result,
            chart=carry_compare.chart(result),
            rows=carry_compare.metric_rows(result),
        )
    except ApplicationError as exc:
        context.update(error=exc.message, error_field=exc.field or "")
        status = 400
    template = "lab/_carry_compare_result.html" if request.htmx else "lab/carry_compare.html"
    return render(request, template, context, status=status)


# --- API -------------------------------------------------------------------------------------


class CarryCompareRequest(serializers.Serializer):
    dataset = serializers.IntegerField(
        help_text="A candle dataset id; its symbol's funding series is found automatically."
    )
    date_from = serializers.CharField(
        required=False, allow_null=True, help_text="ISO-8601 date/datetime (UTC), inclusive."
    )
    date_to = serializers.CharField(
        required=False, allow_null=True, help_text="ISO-8601 date/datetime (UTC), exclusive."
    )
    params = serializers.DictField(
        required=False,
        child=serializers.JSONField(),
        help_text="funding_carry parameters applied to both runs (all but strategy_mode), "
        'e.g. {"min_funding_rate": 0.0002, "entry_threshold": 0.45}; others default.',
    )
    costs = serializers.DictField(
        required=False,
        child=serializers.FloatField(),
        help_text="commission_pct, slippage_pct (percent per fill), initial_equity.",
    )


class _Equity(serializers.Serializer):
    ts = serializers.ListField(child=serializers.IntegerField(), help_text="epoch seconds")
    equity = serializers.ListField(child=serializers.FloatField())


class _ModeResult(serializers.Serializer):
    strategy_mode = serializers.ChoiceField(choices=list(carry_compare.MODES))
    params = serializers.DictField(child=serializers.JSONField())
    metrics = serializers.DictField(
        child=serializers.FloatField(allow_null=True), help_text="null where undefined (NaN)"
    )
    equity = _Equity(help_text=f"At most {carry_compare.MAX_POINTS} points.")


class CarryCompareResponse(serializers.Serializer):
    ok = serializers.BooleanField()
    strategy = serializers.CharField()
    dataset = serializers.DictField()
    funding_dataset = serializers.DictField()
    date_from = serializers.IntegerField(help_text="first bar, epoch seconds")
    date_to = serializers.IntegerField(help_text="last bar, epoch seconds")
    bars = serializers.IntegerField()
    funding_periods = serializers.IntegerField()
    costs = serializers.DictField(child=serializers.FloatField())
    results = _ModeResult(many=True, help_text="simple first, then composite")


class CarryCompareError(serializers.Serializer):
    ok = serializers.BooleanField(default=False)
    error = serializers.CharField()
    field = serializers.CharField(required=False)


class CarryCompareView(APIView):
    parser_classes = [NonStrictJSONParser]  # NaN/Infinity reach the field check that names them

    @extend_schema(
        operation_id="carry_compare",
        summary="Funding carry: simple vs composite side by side",
        description=(
            "Runs funding_carry in simple and in composite mode on the same candles, funding "
            "series and period, and returns both metric sets and both equity curves."
        ),
        request=CarryCompareRequest,
        responses={
            200: CarryCompareResponse,
            400: OpenApiResponse(CarryCompareError, description="Invalid; `field` names it."),
            401: OpenApiResponse(CarryCompareError, description="Not logged in."),
        },
    )
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            raise ApplicationError("the request body must be a JSON object")
        known = {"dataset", "date_from", "date_to", "params", "costs"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ApplicationError(
                f"unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}",
                field=unknown[0],
            )
        if "dataset" not in data:
            raise ApplicationError("dataset is required: a candle dataset id", field="dataset")
        return Response(
            carry_compare.carry_compare_run(
                dataset_id=data["dataset"],
                date_from=data.get("date_from"),
                date_to=data.get("date_to"),
                params=data.get("params"),
                costs=data.get("costs"),
            )
        )
