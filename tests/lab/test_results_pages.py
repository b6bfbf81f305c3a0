"""Results pages: heatmap and sensitivity partials, run detail, compare, CSV export.

Owner (alice) and colleague (bob) see them; an outsider (charlie) gets 404 everywhere.
"""

import datetime as dt
import math
import re

import pytest
from django.http import StreamingHttpResponse
from django.template.defaultfilters import floatformat

from apps.optimization.models import JobStatus
from apps.optimization.selectors.runs import run_backtest_detail
from apps.strategies.models import StrategyConfig
from tests.factories import make_job, run_all_chunks
from tests.results_data import SEED_GRID, job_with_runs, seed_metrics

pytestmark = pytest.mark.django_db


@pytest.fixture
def seed_job(alice, datasets):
    return job_with_runs(
        alice, datasets[:1], seed_metrics, grid=SEED_GRID, strategy="smc_zones",
        objective="win_rate",
    )  # fmt: skip


@pytest.fixture
def finished_job(alice, datasets):
    job = make_job(alice, datasets[:1], objective="total_return_pct")
    run_all_chunks(job)
    return job


def urls(job, run_id):
    return [
        f"/lab/jobs/{job.id}/heatmap/",
        f"/lab/jobs/{job.id}/sensitivity/",
        f"/lab/jobs/{job.id}/runs/{run_id}/",
        f"/lab/jobs/{job.id}/export.csv",
    ]


def test_the_owner_and_a_colleague_see_every_results_page(client, alice, bob, finished_job):
    job = finished_job
    run = job.runs.first()
    heatmap, sensitivity, run_page, export = urls(job, run.id)
    for user in (alice, bob):
        client.force_login(user)
        pages = {url: client.get(url) for url in (heatmap, sensitivity, run_page, export)}
        assert {url: r.status_code for url, r in pages.items()} == dict.fromkeys(pages, 200)
        html = pages[heatmap].content.decode()
        assert "<html" in html and "Total return by fast vs slow" in html  # the objective
        assert 'id="heatmap-table" data-x="slow" data-y="fast"' in html
        html = pages[sensitivity].content.decode()
        assert f'(<a href="/lab/jobs/{job.id}/runs/{job.best_run_id}/">' in html  # around it
        assert f"<h1>Run {run.id} <small>of job #{job.id}" in pages[run_page].content.decode()
        lines = b"".join(pages[export].streaming_content).decode().splitlines()
        assert sorted(int(line.split(",")[0]) for line in lines[1:]) == sorted(
            job.runs.values_list("id", flat=True)
        )
        response = client.get(heatmap, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        partial = response.content.decode()
        assert "<html" not in partial and 'id="heatmap-table"' in partial


def test_an_outsider_gets_404_on_every_results_page(client, charlie, finished_job):
    run = finished_job.runs.first()
    client.force_login(charlie)
    for url in urls(finished_job, run.id):
        assert client.get(url).status_code == 404, url
    assert (
        client.get(f"/lab/compare/?ids={finished_job.id},{finished_job.id + 1}").status_code == 404
    )


def test_results_pages_require_login(client, finished_job):
    for url in urls(finished_job, finished_job.runs.first().id):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"/accounts/login/?next={url}"


def test_the_seeds_heatmap_win_rate_by_rr_target_vs_sl_buffer_with_the_best_marked(
    client, alice, seed_job
):
    client.force_login(alice)
    response = client.get(
        f"/lab/jobs/{seed_job.id}/heatmap/?group=imbalance", HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert "Win rate by rr_target vs sl_buffer_pct" in html
    assert '<td style="background:' in html and 'id="heatmap-best"' in html
    best = html.split('id="heatmap-best"', 1)[1].split("</td>", 1)[0]
    assert "55.00*" in best and "1 run" in best
    assert html.count("55.00*") == 1
    assert 'id="heatmap-legend"' in html and "higher is better" in html
    assert "rr_target = 2, sl_buffer_pct = 10" in html
    assert "HX-Request" in response["Vary"]
    assert 'hx-trigger="every 2s"' not in html  # finished: no polling


def test_the_heatmap_partial_url_carries_the_choices_and_answers_a_whole_page(
    client, alice, seed_job
):
    client.force_login(alice)
    url = (
        f"/lab/jobs/{seed_job.id}/heatmap/?x=rr_target&y=sl_buffer_pct&metric=sharpe"
        "&agg=mean&group=order_block"
    )
    page = client.get(url).content.decode()
    assert "<html" in page and "Sharpe ratio by sl_buffer_pct vs rr_target" in page
    assert "x=rr_target&amp;y=sl_buffer_pct&amp;metric=sharpe&amp;agg=mean" in page
    partial = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and 'id="heatmap-form"' in partial


def test_a_bad_heatmap_choice_is_a_message_not_a_traceback(client, alice, seed_job):
    client.force_login(alice)
    response = client.get(f"/lab/jobs/{seed_job.id}/heatmap/?x=nope", HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "x must be a parameter of this job" in response.content.decode()
    # Rows and columns on the same parameter (what swapping axes does half-way): the message,
    # and the selects still hold the operator's choices, so one more choice fixes it.
    html = client.get(
        f"/lab/jobs/{seed_job.id}/heatmap/?x=rr_target&y=rr_target&metric=sharpe&agg=min",
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "x and y must be two different parameters (both are &#x27;rr_target&#x27;)" in html
    for select, value in (("x", "rr_target"), ("y", "rr_target"), ("metric", "sharpe"),
                          ("agg", "min")):  # fmt: skip
        chosen = re.search(rf'id="heatmap-{select}">.*?</select>', html, re.S).group(0)
        assert f'value="{value}" selected' in chosen, (select, chosen)


def test_a_running_job_without_runs_says_so_and_polls(client, alice, datasets):
    job = make_job(alice, datasets[:1])
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{job.id}/heatmap/", HTTP_HX_REQUEST="true").content.decode()
    assert "No runs yet" in html and 'hx-trigger="every 2s"' in html
    html = client.get(f"/lab/jobs/{job.id}/sensitivity/", HTTP_HX_REQUEST="true").content.decode()
    assert "No scored runs yet" in html and 'hx-trigger="every 2s"' in html


def test_a_running_job_with_some_runs_shows_them_and_says_it_is_running(
    client, alice, datasets, small_chunks
):
    job = make_job(alice, datasets[:1])
    from apps.optimization.services.execution import chunk_execute

    chunk_execute(chunk_id=job.chunks.order_by("index").first().id)
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{job.id}/heatmap/", HTTP_HX_REQUEST="true").content.decode()
    assert "Job still running" in html and 'id="heatmap-table"' in html
    assert 'hx-trigger="every 2s"' in html


def test_a_failed_job_shows_its_error(client, alice, datasets):
    job = job_with_runs(alice, datasets[:1], lambda d, gi, p: None, status=JobStatus.FAILED)
    job.error = "12 of 12 runs failed; first error: boom"
    job.save()
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{job.id}/heatmap/", HTTP_HX_REQUEST="true").content.decode()
    assert "Job failed: 12 of 12 runs failed" in html and "No succeeded runs" in html
    html = client.get(f"/lab/jobs/{job.id}/sensitivity/", HTTP_HX_REQUEST="true").content.decode()
    assert "the job failed" in html


def test_a_cancelled_job_says_so(client, alice, datasets):
    job = job_with_runs(
        alice, datasets[:1], lambda d, gi, p: {"sharpe": gi}, status=JobStatus.CANCELLED
    )
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{job.id}/heatmap/", HTTP_HX_REQUEST="true").content.decode()
    assert "Job cancelled" in html and 'id="heatmap-table"' in html


def test_the_job_page_loads_heatmap_and_sensitivity_and_links_the_export(
    client, alice, finished_job
):
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{finished_job.id}/").content.decode()
    assert f'hx-get="/lab/jobs/{finished_job.id}/heatmap/"' in html
    assert f'hx-get="/lab/jobs/{finished_job.id}/sensitivity/"' in html
    assert f'href="/lab/jobs/{finished_job.id}/export.csv"' in html
    assert 'id="best-table"' in html and "none yet" in html
    assert f"/lab/jobs/{finished_job.id}/runs/" in html


def test_the_best_table_shows_production_parameters_and_the_improvement(
    client, alice, finished_job
):
    StrategyConfig.objects.create(
        strategy="sma_cross", symbol="BTC", timeframe="1h", version=2,
        params={"fast": 5, "slow": 60, "sl_pct": 1.0},
    )  # fmt: skip
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{finished_job.id}/").content.decode()
    assert "v2" in html and "<code>fast=5</code>" in html
    # Production's value on this data is the sweep's own run with those parameters (rr = 2).
    same = finished_job.runs.get(params={"fast": 5, "slow": 60, "sl_pct": 1.0, "rr": 2.0})
    base = same.total_return_pct
    table = html.split('id="best-table"', 1)[1].split("</table>", 1)[0]
    shown = re.findall(r'<td class="improvement"><span class="(up|down)">([^<]*)</span>', table)
    top = finished_job.runs.order_by("-total_return_pct", "id")[:10]
    expected = []
    for r in top:
        gain = 100 * (r.total_return_pct - base) / abs(base)
        sign = "+" if gain >= 0 else ""
        expected.append(("up" if gain >= 0 else "down", f"{sign}{floatformat(gain, 1)} %"))
    assert shown == expected
    assert ("up", "+0.0 %") in shown  # the production point itself is in the sweep
    assert "apply-button" not in html  # alice lacks strategies.apply_parameters (tests/strategies)


def test_sensitivity_shows_one_chart_per_varying_parameter(client, alice, seed_job):
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{seed_job.id}/sensitivity/").content.decode()
    for name in ("pattern_type", "rr_target", "sl_buffer_pct"):
        assert f'id="sensitivity-{name}"' in html
    assert 'class="bar current"' in html


def test_the_run_page_has_equity_drawdown_trades_and_metrics(client, alice, finished_job):
    run = finished_job.runs.order_by("-n_trades").first()
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{finished_job.id}/runs/{run.id}/").content.decode()
    for marker in ('id="equity-chart"', 'id="drawdown-chart"', 'id="run-curve"',
                   'id="trade-list"', 'id="run-metrics"', "uPlot.iife.min.js"):  # fmt: skip
        assert marker in html
    trades = html.split('id="trade-list"', 1)[1].split("</tbody>", 1)[0]
    numbers = [int(n) for n in re.findall(r"<tr><td>(\d+)</td>", trades)]
    assert run.n_trades > 0 and numbers == list(range(1, run.n_trades + 1))


def test_the_run_page_shows_a_position_open_at_the_end_as_its_last_row(client, alice, datasets):
    # On the first 50 days of the data fast 2 ends long, fast 3 flat (found by trying)
    grid = {"fast": [2, 3], "slow": [4, 5], "sl_pct": [50.0], "rr": [1.0, 2.0]}
    end = datasets[0].start + dt.timedelta(days=50)
    job = make_job(alice, datasets[:1], grid=grid, date_to=end)
    run_all_chunks(job)
    held = [(r, d) for r in job.runs.all() if (d := run_backtest_detail(r))["open_position"]]
    flat = [r for r in job.runs.all() if not run_backtest_detail(r)["open_position"]]
    assert held and flat
    run, detail = held[0]
    o = detail["open_position"]
    assert o["mark_time"] == detail["curve"]["time"][-1] and o["side"] == "long"
    # the open position is not a trade: the closed ones are what the run counts
    assert len(detail["trades"]) == run.n_trades
    assert all(t["reason"] != "end" for t in detail["trades"])
    assert o["entry_time"] >= detail["trades"][-1]["exit_time"]
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{job.id}/runs/{run.id}/").content.decode()
    body = html.split('id="trade-list"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = body.split("<tr")[1:]
    assert run.n_trades < 500 and len(rows) == run.n_trades + 1  # all shown, then the open one
    last = rows[-1]
    assert 'id="open-position"' in last and "<td>open at end</td>" in last
    assert f"{floatformat(o['mark_price'], 4)} <small>mark</small>" in last
    assert f"{floatformat(o['unrealised_pnl_pct'], 2)} <small>unrealised</small>" in last
    assert 'id="open-position"' not in "".join(rows[:-1])
    page = client.get(f"/lab/jobs/{job.id}/runs/{flat[0].id}/").content.decode()
    assert 'id="open-position"' not in page and "open at end" not in page


def test_a_run_of_another_job_is_404(client, alice, finished_job, datasets):
    other = make_job(alice, datasets[:1], name="other")
    run_all_chunks(other)
    client.force_login(alice)
    url = f"/lab/jobs/{finished_job.id}/runs/{other.runs.first().id}/"
    assert client.get(url).status_code == 404


def test_compare_two_jobs_from_the_job_list(client, alice, bob, finished_job, datasets):
    second = make_job(alice, datasets[:1], name="second", objective="sharpe")
    run_all_chunks(second)
    client.force_login(bob)
    listing = client.get("/lab/").content.decode()
    assert 'action="/lab/compare/"' in listing and f'name="ids" value="{second.id}"' in listing
    html = client.get(f"/lab/compare/?ids={finished_job.id}&ids={second.id}").content.decode()
    assert 'id="compare-table"' in html and 'id="compare-chart"' in html
    assert "second" in html and 'id="compare-curves"' in html
    comma = client.get(f"/lab/compare/?ids={finished_job.id},{second.id}")
    assert comma.status_code == 200  # the admin action's form of the same list
    for job in (finished_job, second):
        assert f'href="/lab/jobs/{job.id}/"' in comma.content.decode()


def test_compare_needs_two_to_four_jobs(client, alice, finished_job):
    client.force_login(alice)
    response = client.get(f"/lab/compare/?ids={finished_job.id}")
    assert response.status_code == 400 and "2 to 4" in response.content.decode()


def test_the_csv_export_streams(client, alice, datasets):
    grid = {"fast": list(range(2, 52)), "slow": list(range(60, 120)), "sl_pct": [1.0]}
    job = job_with_runs(alice, datasets[:1], lambda d, gi, p: {"sharpe": gi * 0.001}, grid=grid)
    client.force_login(alice)
    response = client.get(f"/lab/jobs/{job.id}/export.csv")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 1 + 3000
    assert lines[0].startswith("run_id,dataset,fast,slow,sl_pct,rr,status,total_return_pct")
    assert lines[-1].split(",")[2:4] == ["51", "119"]


def test_sensitivity_bars_grow_from_a_zero_line():
    from apps.lab.results_views import bar_geometry

    # values -1, 0.5, 2 (and one missing): scale -1..2, span 3, zero 2/3 of the way down
    zero, bars = bar_geometry([-1.0, 0.5, 2.0, None], -1.0, 2.0)
    assert zero == pytest.approx(200 / 3)
    neg, pos, top, missing = bars
    # a negative value hangs below the line, a positive one rises above it
    assert neg["top"] == pytest.approx(zero) and neg["height"] == pytest.approx(100 / 3)
    assert pos["top"] == pytest.approx(zero - 50 / 3) and pos["height"] == pytest.approx(50 / 3)
    assert top["top"] == pytest.approx(0.0) and top["height"] == pytest.approx(zero)
    assert missing["height"] == 0.0
    # all positive: the line at the bottom, the scale from 0 (not from the smallest value)
    zero, (a, b) = bar_geometry([1.0, 4.0], 1.0, 4.0)
    assert zero == 100.0 and a["height"] == pytest.approx(25.0) and b["top"] == pytest.approx(0)
    # all negative (a drawdown): the line at the top, bars hang from it
    zero, (a, b) = bar_geometry([-5.0, -10.0], -10.0, -5.0)
    assert zero == 0.0 and a["top"] == 0.0 and a["height"] == pytest.approx(50.0)
    assert b["height"] == pytest.approx(100.0)
    # an unbounded ratio reaches the edge; zero itself is a hairline, not nothing
    zero, (inf, nil) = bar_geometry([math.inf, 0.0], 0.0, 3.0)
    assert inf["top"] == 0.0 and inf["height"] == pytest.approx(100.0)
    assert nil["top"] == pytest.approx(100.0 - 0.5) and nil["height"] == 0.5


def test_the_sensitivity_page_draws_negative_values_below_the_line(client, alice, datasets):
    # sharpe by fast: fast 5 -> -1, 10 -> 0.5, 20 -> 2 (slow and sl_pct add nothing)
    job = job_with_runs(
        alice, datasets[:1], lambda d, gi, p: {"sharpe": {5: -1.0, 10: 0.5, 20: 2.0}[p["fast"]]}
    )
    client.force_login(alice)
    html = client.get(f"/lab/jobs/{job.id}/sensitivity/", HTTP_HX_REQUEST="true").content.decode()
    fast = html[html.index('id="sensitivity-fast"') :]
    fast = fast[: fast.index("</figure>")]
    assert fast.count('class="zero" style="top:66.67%"') == 3
    tops = re.findall(r'class="bar[^"]*" style="top:([\d.]+)%;height:([\d.]+)%"', fast)
    assert tops == [("66.67", "33.33"), ("50.00", "16.67"), ("0.00", "66.67")]
