"""Lab pages of the registered strategies: the list, and the look-ahead / warm-up check."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from apps.lab.evaluation_views import strategy_detail_context
from apps.market.models import Dataset
from apps.strategies.services.checks import strategy_check
from backtestlab.engine.strategies import STRATEGIES
from backtestlab.errors import ApplicationError


def strategy_rows() -> list[dict]:
    """Every registered strategy with where it comes from (built-in or the team's)."""
    rows = []
    for s in STRATEGIES.values():
        module = type(s).__module__
        rows.append(
            {
                "strategy": s,
                "origin": "built-in" if module.startswith("backtestlab.") else module,
                "n_params": len(s.parameter_space()),
            }
        )
    return rows


@login_required
@require_GET
def strategy_list(request):
    return render(request, "lab/strategy_list.html", {"rows": strategy_rows()})


@login_required
@require_POST
def strategy_check_view(request, key: str):
    strategy = STRATEGIES.get(key)
    if strategy is None:
        raise Http404("unknown strategy")
    raw = request.POST.get("dataset", "").strip()
    context = strategy_detail_context(request, strategy)
    try:
        dataset_id = int(raw) if raw else None
        if dataset_id is not None and not Dataset.objects.filter(id=dataset_id).exists():
            raise ApplicationError(f"dataset {dataset_id} does not exist; pick one from the list")
        result, what = strategy_check(strategy, dataset_id=dataset_id)
    except ValueError:
        context["check_error"] = f"dataset must be a dataset id from the list, got {raw!r}"
        return render(request, "lab/strategy_detail.html", context, status=400)
    except ApplicationError as exc:
        context["check_error"] = exc.message
        return render(request, "lab/strategy_detail.html", context, status=exc.status)
    context["check"] = {"result": result, "what": what, "lines": result.lines()}
    context["check_dataset"] = dataset_id
    return render(request, "lab/strategy_detail.html", context)
