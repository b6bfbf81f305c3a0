"""The Datasets page: every dataset with its span, rows, gaps, version and the jobs using it;
upload a file, see its first and last rows and its gap report, then store it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from apps.market.models import Dataset
from apps.market.services import market_upload_confirm, market_upload_preview
from apps.optimization.selectors.jobs import jobs_visible_to
from apps.optimization.services.validation import setting
from backtestlab.errors import ApplicationError


def _page(request, status: int = 200, **extra):
    datasets = list(
        Dataset.objects.annotate(n_jobs=Count("jobs", distinct=True)).order_by(
            "symbol", "kind", "timeframe", "-version"
        )
    )
    visible = jobs_visible_to(request.user)
    for d in datasets:  # the newest jobs you may see that read it
        d.recent_jobs = list(
            visible.filter(Q(datasets=d) | Q(companions__companion=d))
            .distinct()
            .order_by("-id")
            .values("id", "name")[:3]
        )
    context = {
        "datasets": datasets,
        "can_upload": request.user.has_perm("market.add_dataset"),
        "max_upload_mb": setting("MAX_UPLOAD_MB"),
        "created": request.GET.get("created", ""),
        **extra,
    }
    return render(request, "lab/datasets.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def datasets(request):
    if request.method == "GET":
        return _page(request)
    if not request.user.has_perm("market.add_dataset"):
        return _page(request, 403, error="uploading data needs the 'Can add dataset' permission")
    try:
        if request.POST.get("step") == "save":
            dataset = market_upload_confirm(
                token=request.POST.get("token", ""),
                symbol=request.POST.get("symbol", "").strip(),
                timeframe=request.POST.get("timeframe", "").strip(),
                name=request.POST.get("name", "").strip(),
            )
            return redirect(f"{reverse('lab:datasets')}?created={dataset.id}#dataset-{dataset.id}")
        preview = market_upload_preview(
            upload=request.FILES.get("file"), max_bytes=setting("MAX_UPLOAD_MB") * 2**20
        )
    except ApplicationError as exc:
        token = request.POST.get("token", "")
        preview = None
        if token and request.POST.get("step") == "save":  # keep the preview to fix a value
            preview = {
                "token": token,
                "symbol": request.POST.get("symbol", ""),
                "timeframe": request.POST.get("timeframe", ""),
                "name": request.POST.get("name", ""),
            }
        return _page(request, exc.status, error=exc.message, preview=preview)
    return _page(request, preview=preview)
