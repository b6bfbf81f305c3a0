"""The paper-trading page: each book's open positions, PnL and the risk manager's vetoes."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.strategies.models import PaperBook
from apps.strategies.services.paper import paper_overview


@login_required
@require_GET
def paper(request):
    books = paper_overview(PaperBook.objects.order_by("id"))
    return render(request, "lab/paper.html", {"books": books})
