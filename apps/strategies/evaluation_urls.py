"""API routes of the evaluation layer (the project includes them before the optimization
router: "jobs/monte_carlo/" would otherwise be read as the job with pk "monte_carlo")."""

from django.urls import path

from apps.strategies import evaluation_api as v

urlpatterns = [
    path("jobs/monte_carlo/", v.MonteCarloJobCreateView.as_view(), name="api-job-monte-carlo"),
    path("jobs/walk_forward/", v.WalkForwardJobCreateView.as_view(), name="api-job-walk-forward"),
    path("jobs/<int:pk>/evaluation/", v.JobEvaluationView.as_view(), name="api-job-evaluation"),
    path("runs/<int:pk>/stress/", v.RunStressView.as_view(), name="api-run-stress"),
    path(
        "strategies/<str:key>/approval/",
        v.StrategyApprovalView.as_view(),
        name="api-strategy-approval",
    ),
]
