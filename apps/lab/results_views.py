"""Lab pages of a job's results: heatmap and sensitivity partials, run detail, compare, CSV.

Thin views over the results selectors (``apps/optimization/selectors/``). Each partial URL
also answers a plain GET with a whole page around the same fragment (``Vary: HX-Request``),
so a heatmap's URL with its choices is a bookmark.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.optimization.ranking import run_unranked_reason
from apps.optimization.results_api import export_csv_response
from apps.optimization.selectors import compare as compare_selectors
from apps.optimization.selectors import heatmap as heatmap_selectors
from apps.optimization.selectors import sensitivity as sensitivity_selectors
from apps.optimization.selectors.compare import compare_ids_parse
from apps.optimization.selectors.heatmap import HEATMAP_AGGS, heatmap_options
from apps.optimization.selectors.jobs import (
    job_get_for_user,
    jobs_visible_to,
    run_get_for_user,
    strategy_constraints_text,
)
from apps.optimization.selectors.runs import run_backtest_detail
from apps.optimization.selectors.slices import format_value, job_slices
from apps.strategies.selectors.best_table import job_best_table
from apps.strategies.selectors.risk_checks import run_risk_check
from backtestlab.engine.metrics import METRIC_NAMES, METRICS
from backtestlab.errors import ApplicationError

MAX_TRADES_SHOWN = 500


def _colour(t: float) -> str:
    """Red (worst, t=0) through yellow to green (best, t=1)."""
    return f"hsl({120.0 * t:.0f}, 70%, {88 - 18 * abs(t - 0.5):.0f}%)"


def _scale(values) -> tuple[float, float]:
    """(low, high) of the finite values for a colour or bar scale; (0, 0) when none."""
    finite = [v for v in values if math.isfinite(v)]
    return (min(finite), max(finite)) if finite else (0.0, 0.0)


def _position(value: float, low: float, high: float) -> float:
    """Where ``value`` lies on the scale, 0..1; an unbounded value at its end (∞ is best)."""
    if high == low:
        return 1.0 if value >= high else 0.0
    return min(1.0, max(0.0, (value - low) / (high - low)))


def bar_geometry(values, low: float, high: float) -> tuple[float, list[dict]]:
    """Bars drawn from a zero line: ``(zero, bars)`` with ``zero`` the line's distance from
    the top of the plot and each bar's ``top`` and ``height``, all in % of the plot's height.
    Positive values rise above the line, negative ones hang below it (a Sharpe of -0.5 is
    never drawn as a positive bar); the scale spans the finite values and 0; an unbounded
    value (±∞) reaches the plot's edge; a missing one has no bar."""
    lo, hi = min(low, 0.0), max(high, 0.0)
    span = (hi - lo) or 1.0
    zero = 100.0 * hi / span
    bars = []
    for v in values:
        if v is None:
            bars.append({"top": zero, "height": 0.0})
            continue
        v = min(max(v, lo), hi)  # ∞ to the edge
        if v >= 0:
            height = max(100.0 * v / span, 0.5)  # zero itself: a hairline on the line
            bars.append({"top": zero - height, "height": height})
        else:
            bars.append({"top": zero, "height": max(100.0 * -v / span, 0.5)})
    return zero, bars


def heatmap_context(job: OptimizationJob, query) -> dict:
    """Everything _heatmap.html needs; a bad choice becomes a message, not an exception."""
    grid = job.grid
    context = {
        "job": job,
        "metrics": [(n, METRICS[n].label) for n in METRIC_NAMES],
        "aggs": HEATMAP_AGGS,
        "param_names": list(grid),
        "slices": job_slices(job),
        "legend_from": _colour(0.0),
        "legend_mid": _colour(0.5),
        "legend_to": _colour(1.0),
        "views": [
            ("metric", "each run's value"),
            ("neighbourhood", "neighbourhood (worst objective one grid step around)"),
        ],
    }
    if query.get("view") == "neighbourhood":  # the page's metric select: the objective only
        query = query.copy()
        query["metric"] = job.objective
    try:
        options = heatmap_options(job, query)
    except ApplicationError as exc:
        context["error"] = exc.message
        context["self_url"] = reverse("lab:job-heatmap", args=[job.id])
        # the selects keep what the operator chose, so one more choice fixes it
        context["options"] = SimpleNamespace(
            **{k: query.get(k) or "" for k in ("x", "y", "metric", "agg", "view")}
        )
        return context
    heatmap = heatmap_selectors.job_heatmap(job=job, options=options)
    low, high = _scale(
        c["value"]
        for row in heatmap.cells
        for c in row
        if c and c["ranked"] and c["value"] is not None
    )
    rows = []
    for yi, y in enumerate(heatmap.y_values):
        cells = []
        for xi, cell in enumerate(heatmap.cells[yi]):
            style = ""
            if cell and cell["value"] is not None and cell["ranked"]:
                t = _position(cell["value"], low, high)
                style = f"background:{_colour(t if heatmap.higher_is_better else 1 - t)}"
            is_best = bool(heatmap.best and heatmap.best["xi"] == xi and heatmap.best["yi"] == yi)
            skipped = bool(heatmap.skipped and heatmap.skipped[yi][xi])
            cells.append({"cell": cell, "style": style, "best": is_best, "skipped": skipped})
        rows.append({"value": format_value(y), "cells": cells})
    fixed_choices = []
    for name in grid:
        if name in (options.x, options.y) or len(grid[name]) < 2:
            continue
        if name in options.slice.group and name not in options.fixed:
            continue  # chosen by the slice selector
        fixed_choices.append(
            {
                "name": name,
                "values": [format_value(v) for v in grid[name]],
                "chosen": (
                    format_value(grid[name][options.fixed[name]]) if name in options.fixed else ""
                ),
            }
        )
    query_string = urlencode(options.query(job))
    context.update(
        constraints_text=strategy_constraints_text(job.strategy),
        options=options,
        heatmap=heatmap,
        metric_label=heatmap.metric_label,
        x_labels=[format_value(v) for v in heatmap.x_values],
        rows=rows,
        fixed_choices=fixed_choices,
        datasets=list({s.dataset.id: s.dataset for s in context["slices"]}.values()),
        groups=list(dict.fromkeys(s.group_label for s in context["slices"] if s.group)),
        self_url=f"{reverse('lab:job-heatmap', args=[job.id])}?{query_string}",
        page_url=f"{reverse('lab:job-heatmap', args=[job.id])}?{query_string}",
        api_url=f"{reverse('api-job-heatmap', args=[job.id])}?{query_string}",
        best_x=format_value(heatmap.best["x"]) if heatmap.best else "",
        best_y=format_value(heatmap.best["y"]) if heatmap.best else "",
    )
    return context


@login_required
@require_GET
@vary_on_headers("HX-Request")
def job_heatmap(request, job_id: int):
    job = job_get_for_user(request.user, job_id)
    context = heatmap_context(job, request.GET)
    status = 400 if "error" in context else 200
    template = "lab/_heatmap.html" if request.htmx else "lab/job_heatmap.html"
    return render(request, template, context, status=status)


def sensitivity_context(job: OptimizationJob, query) -> dict:
    context = {"job": job, "metrics": [(n, METRICS[n].label) for n in METRIC_NAMES]}
    try:
        data = sensitivity_selectors.job_sensitivity(job=job, metric=query.get("metric") or None)
    except ApplicationError as exc:
        return {**context, "error": exc.message, "metric": job.objective}
    charts = []
    for p in data["parameters"]:
        low, high = _scale(pt["metric"] for pt in p["points"] if pt["metric"] is not None)
        zero, bars = bar_geometry([pt["metric"] for pt in p["points"]], low, high)
        for pt, bar in zip(p["points"], bars, strict=True):
            bar.update(pt, label=format_value(pt["value"]))
        charts.append({**p, "bars": bars, "zero": zero})
    return {
        **context,
        "data": data,
        "metric": data["metric"],
        "charts": charts,
        "self_url": reverse("lab:job-sensitivity", args=[job.id])
        + f"?{urlencode({'metric': data['metric']})}",
    }


@login_required
@require_GET
@vary_on_headers("HX-Request")
def job_sensitivity(request, job_id: int):
    job = job_get_for_user(request.user, job_id)
    context = sensitivity_context(job, request.GET)
    status = 400 if "error" in context else 200
    template = "lab/_sensitivity.html" if request.htmx else "lab/job_sensitivity.html"
    return render(request, template, context, status=status)


@login_required
@require_GET
def run_detail(request, job_id: int, run_id: int):
    job = job_get_for_user(request.user, job_id)
    run = run_get_for_user(request.user, run_id, job=job)
    run.job = job
    names = [*job.grid, *(n for n in run.params if n not in job.grid)]
    context = {
        "job": job,
        "run": run,
        "param_items": [(n, format_value(run.params.get(n))) for n in names],
        "unranked_reason": run_unranked_reason(run),
    }
    if run.status != OptimizationRun.Status.SUCCEEDED:
        context["error"] = f"This run failed, so there is no equity curve: {run.error}"
        return render(request, "lab/run_detail.html", context)
    try:
        detail = run_backtest_detail(run)
    except ApplicationError as exc:  # its data file is missing or changed
        context["error"] = exc.message
        return render(request, "lab/run_detail.html", context, status=exc.status)
    context.update(
        detail=detail,
        chart={
            "time": detail["curve"]["time"],
            "equity": detail["curve"]["equity"],
            "drawdown_pct": detail["curve"]["drawdown_pct"],
        },  # fmt: skip
        metric_rows=[
            (METRICS[n].label, METRICS[n].unit, detail["metrics"][n], getattr(run, n))
            for n in METRIC_NAMES
        ],
        trades=detail["trades"][:MAX_TRADES_SHOWN],
        risk=_run_risk(run),
        trades_hidden=max(0, len(detail["trades"]) - MAX_TRADES_SHOWN),
    )
    return render(request, "lab/run_detail.html", context)


@login_required
@require_GET
def jobs_compare(request):
    raw = request.GET.getlist("ids")
    try:
        ids = compare_ids_parse(raw)
    except ApplicationError as exc:
        jobs = jobs_visible_to(request.user)[:200]
        return render(
            request, "lab/job_compare.html", {"error": exc.message, "jobs": jobs}, status=400
        )
    entries = compare_selectors.jobs_compare(user=request.user, ids=ids)
    param_names = list(dict.fromkeys(n for e in entries for n in e["job"].grid))
    return render(
        request,
        "lab/job_compare.html",
        {
            "entries": entries,
            "param_rows": [
                (
                    n,
                    [
                        format_value(e["params"][n]) if e["params"] and n in e["params"] else "—"
                        for e in entries
                    ],
                )
                for n in param_names
            ],
            "metric_rows": [
                (METRICS[n].label, [e["metrics"][n] if e["metrics"] else None for e in entries])
                for n in METRIC_NAMES
            ],
            "curves": [
                {"name": f"#{e['id']} {e['name']}", "curve": e["curve"]}
                for e in entries
                if e["curve"]
            ],
        },
    )


@login_required
@require_GET
def job_export_csv(request, job_id: int):
    return export_csv_response(job_get_for_user(request.user, job_id))


def _run_risk(run: OptimizationRun) -> dict:
    return run_risk_check(run)


def best_table_columns(job: OptimizationJob) -> tuple[list[str], list[str]]:
    """(parameters with several values: table columns, ``name=value`` of the fixed ones)."""
    grid = job.grid
    varying = [n for n, v in grid.items() if len(v) > 1]
    fixed = [f"{n}={format_value(v[0])}" for n, v in grid.items() if len(v) == 1]
    return varying, fixed


def best_table_context(job: OptimizationJob, *, limit: int, rank: str = "objective") -> list[dict]:
    """The best table with each row's varying parameters in ``job.grid`` order."""
    names = best_table_columns(job)[0]
    table = job_best_table(job=job, limit=limit, rank=rank)
    for section in table:
        for row in section["rows"]:
            row["params"] = [format_value(row["run"].params.get(n)) for n in names]
    return table
