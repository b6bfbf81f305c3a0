"""Unbounded ratios on PostgreSQL: a float8 column keeps ``Infinity`` and orders it above every
finite value, a jsonb column refuses a bare Infinity token (so the job's best parameters must
hold the string), and AVG / percentile_cont over a cell with ∞ is ∞. The same tests as on
SQLite (tests/optimization/test_unbounded_ratios.py), the heatmap's aggregates in SQL here."""

import pytest

from tests.optimization.test_unbounded_ratios import (  # noqa: F401 - collected here too
    pf_job,
    test_heatmap_aggregates_with_an_unbounded_value,
    test_pages_show_infinity_as_the_symbol_and_star_it,
    test_the_api_writes_infinity_and_null_in_strict_json,
    test_the_jobs_best_params_hold_infinity_as_strict_json,
    test_unbounded_runs_are_kept_and_ranked_first,
)

pytestmark = pytest.mark.django_db
