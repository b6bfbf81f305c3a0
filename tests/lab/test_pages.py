"""Backtesting Lab pages: who sees what, the launch form, the polling fragments."""

import re

import pytest
from django.template.defaultfilters import floatformat

from apps.optimization.models import OptimizationJob
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db


def test_pages_require_login(client):
    response = client.get("/lab/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/lab/"
    response = client.get("/lab/jobs/new/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/lab/jobs/new/"


def test_the_owner_sees_her_job_in_the_list_with_a_polling_progress_bar(client, alice, datasets):
    job = make_job(alice, datasets)
    client.force_login(alice)
    html = client.get("/lab/").content.decode()
    assert job.name in html
    assert f'hx-get="/lab/jobs/{job.id}/progress/"' in html and 'hx-trigger="every 2s"' in html


def test_a_finished_jobs_fragment_stops_polling(client, alice, datasets):
    job = make_job(alice, datasets)
    run_all_chunks(job)
    client.force_login(alice)
    fragment = client.get(f"/lab/jobs/{job.id}/progress/").content.decode()
    assert 'data-pct="100.0"' in fragment and "hx-trigger" not in fragment
    status = client.get(f"/lab/jobs/{job.id}/", HTTP_HX_REQUEST="true")
    assert "hx-trigger" not in status.content.decode()
    assert status["Vary"] and "HX-Request" in status["Vary"]


def test_the_job_page_shows_the_best_parameter_table(client, alice, datasets):
    job = make_job(alice, datasets, objective="total_return_pct")
    run_all_chunks(job)
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{job.id}/").content.decode()
    assert "Succeeded" in html
    # One table per dataset: its top 10 runs by the objective, best first.
    for table_id, dataset in (('id="best-table"', datasets[0]), ('id="best-table-2"', datasets[1])):
        table = html.split(table_id, 1)[1].split("</table>", 1)[0]
        shown = [int(i) for i in re.findall(r'class="run-link">(\d+)</a>', table)]
        top = job.runs.filter(dataset=dataset).order_by("-total_return_pct", "id")[:10]
        assert shown == [r.id for r in top]
        values = re.findall(r'<td class="objective">([^<]*)</td>', table)
        assert values == [floatformat(r.total_return_pct, 4) for r in top]


def test_a_running_job_without_runs_says_so(client, alice, datasets):
    job = make_job(alice, datasets)
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{job.id}/").content.decode()
    assert "No runs yet" in html and 'hx-trigger="every 2s"' in html


def test_an_outsider_gets_404_everywhere(client, alice, charlie, datasets):
    job = make_job(alice, datasets)
    client.force_login(charlie)
    assert client.get(f"/lab/jobs/{job.id}/").status_code == 404
    assert client.get(f"/lab/jobs/{job.id}/progress/").status_code == 404
    assert client.post(f"/lab/jobs/{job.id}/cancel/").status_code == 404
    job.refresh_from_db()
    assert job.status == "pending"  # the outsider's cancel did nothing
    assert job.name not in client.get("/lab/").content.decode()


def test_a_colleague_can_see_and_cancel(client, alice, bob, datasets):
    job = make_job(alice, datasets)
    client.force_login(bob)
    page = client.get(f"/lab/jobs/{job.id}/")
    assert page.status_code == 200 and job.name in page.content.decode()
    response = client.post(f"/lab/jobs/{job.id}/cancel/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Cancelled" in response.content.decode()
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_the_launch_form_offers_the_strategys_parameters(client, alice, datasets):
    client.force_login(alice)
    html = client.get("/lab/jobs/new/").content.decode()
    for name in ("fast", "slow", "sl_pct", "rr"):
        assert f'name="p_{name}"' in html
    fragment = client.get("/lab/jobs/new/?strategy=smc_zones", HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert 'id="launch-params"' in html and "<html" not in html
    assert 'name="p_pattern_type"' in html and 'name="p_fast"' not in html  # smc_zones' own


def launch(client, ds, **fields):
    data = {
        "name": "page job",
        "strategy": "sma_cross",
        "datasets": [str(ds[0].id)],
        "p_fast": "5:20:5",
        "p_slow": "30, 60",
        "p_sl_pct": "2",
        "p_rr": "2",
        "objective": "sharpe",
        "commission_pct": "0.1",
        "slippage_pct": "0.05",
    }
    data.update(fields)
    return client.post("/lab/jobs/new/", data)


def test_launching_from_the_form_creates_and_starts_a_job(client, alice, datasets):
    client.force_login(alice)
    response = launch(client, datasets)
    job = OptimizationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/lab/jobs/{job.id}/"
    assert job.parameter_grid["fast"] == [5, 10, 15, 20] and job.total_runs == 8
    assert job.created_by == alice and job.chunks.count() == 1
    assert job.min_trades == 30  # the default, shown in the form


def test_the_form_sets_the_fewest_trades_a_ranked_run_needs(client, alice, datasets):
    client.force_login(alice)
    assert 'name="min_trades" id="id_min_trades" min="1" step="1" value="30"' in (
        client.get("/lab/jobs/new/").content.decode()
    )
    launch(client, datasets, min_trades=" 7 ")
    assert OptimizationJob.objects.get().min_trades == 7


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"p_fast": ""}, "fast: give at least one value"),
        ({"p_fast": "5:50:0"}, "step"),
        ({"p_sl_pct": "nan"}, "sl_pct"),
        ({"p_rr": "abc"}, "rr"),
        ({"datasets": []}, "pick at least one dataset"),
        ({"name": ""}, "name"),
        ({"commission_pct": "lots"}, "commission_pct"),
        (
            {"min_trades": "many"},
            "min_trades must be a whole number of trades, got &#x27;many&#x27;",
        ),
        ({"min_trades": "0"}, "min_trades must be an integer between 1 and 100000, got 0"),
    ],
)
def test_a_bad_form_shows_the_error_and_writes_nothing(client, alice, datasets, fields, message):
    client.force_login(alice)
    response = launch(client, datasets, **fields)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="form-error"' in html and message in html
    assert OptimizationJob.objects.count() == 0
