"""Celery tasks of the production side: thin interfaces over one service."""

from __future__ import annotations

from celery import shared_task

from apps.strategies.services.paper import PAPER_STEP_TASK, paper_books_step


@shared_task(name=PAPER_STEP_TASK, ignore_result=True)
def paper_step() -> list[dict]:
    """Beat: step every enabled paper book over the synthetic days that became available."""
    return paper_books_step()
