"""The seed's light test: a minimal valid request to POST /api/environment_heatmap."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_environment_heatmap_endpoint_answers_a_minimal_request(client, alice):
    client.force_login(alice)
    response = client.post(
        "/api/environment_heatmap",
        {
            "underlying": "BTC",
            "x_metric": "vrp_30d",
            "y_metric": "adx_14d",
            "x_start": 5,
            "x_step": 5,
            "x_points": 5,
            "y_start": 15,
            "y_step": 5,
            "y_points": 4,
        },
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert len(body["x_labels"]) == 5 and len(body["y_labels"]) == 4
    assert len(body["grid"]) == len(body["y_labels"])
    assert all(len(row) == len(body["x_labels"]) for row in body["grid"])
