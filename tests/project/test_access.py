"""Who may reach what, for every URL in the URLconf (new endpoints are covered automatically).

- Anonymous callers are refused everywhere except the PUBLIC allow-list: the login page, the
  token endpoint, and the API schema and its docs (they describe the API, not the data).
- Objects are team-scoped: a job (and its runs) is visible to its owner, to users sharing a
  group with the owner, and to staff; anybody else gets 404, never 403, so outsiders do not
  learn that it exists.
- CSRF is enforced for session-authenticated posts (HTMX sends the token as X-CSRFToken), and
  every response carries the security headers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import OptimizationJob, OptimizationRun
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

# Reachable without logging in, and why.
PUBLIC = {
    "": "redirects to /lab/, which asks for a login",
    "accounts/login/": "the login page",
    "accounts/logout/": "logging out needs no login",
    "api/token/": "exchanges a username and password for a token",
    "api/schema/": "the OpenAPI schema: describes the API, holds no data",
    "api/docs/": "Swagger UI over the schema",
}

# URL parameters that name a team-scoped object, and where their value comes from.
JOB_SCOPED = {"job_id": "job", "run_id": "run"}


def _routes(patterns=None, prefix=""):
    """(route, pattern) for every URL pattern; DRF's format-suffix twins are left out."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            route = prefix + str(p.pattern)
            if "format" not in p.pattern.regex.groupindex:
                yield route, p


ROUTES = sorted({route for route, _ in _routes()})
APP_ROUTES = [r for r in ROUTES if not r.startswith("admin/") and r not in PUBLIC]
OBJECT_ROUTES = [r for r in APP_ROUTES if re.search(r"\b(pk|job_id|run_id)\b", r)]


def _scope(route: str, name: str) -> str:
    """What a URL parameter names: a job, a run, a dataset or a strategy."""
    if name in JOB_SCOPED:
        return JOB_SCOPED[name]
    if name == "pk":
        head = route.split("<")[0].split("(?P")[0]
        if "runs/" in head:
            return "run"
        if "datasets" in head:
            return "dataset"
        return "job"
    return "strategy" if name == "key" else name


def concrete(route: str, values: dict[str, object]) -> str:
    """The route with its parameters filled in (path converters and DRF's regexes alike)."""

    def value(match) -> str:
        return str(values.get(_scope(route, match.group(1)), 1))

    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", value, route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", value, path)
    path = path.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    return "/" + path


@pytest.fixture
def objects(alice):
    synthetic_universe_create(symbols=("BTC",), days=10, timeframes=("1h",))
    candles = Dataset.objects.get(kind=Dataset.Kind.CANDLES)
    job = make_job(alice, [candles], grid={"fast": [5, 10], "slow": [50]})
    run_all_chunks(job)
    return {
        "job": job.id,
        "run": OptimizationRun.objects.filter(job=job).values_list("id", flat=True).first(),
        "dataset": candles.id,
        "strategy": "sma_cross",
    }


def test_the_urlconf_was_enumerated():
    assert "api/^jobs/$" in ROUTES and "lab/jobs/<int:job_id>/" in ROUTES
    assert len(OBJECT_ROUTES) >= 5


# One test walks every route (one set of fixtures instead of one per route); the failures
# list names each offending route and method.


def test_every_endpoint_and_page_refuses_an_anonymous_caller(client, objects):
    failures = []
    for route in APP_ROUTES:
        path = concrete(route, objects)
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            status = response.status_code
            to_login = status == 302 and response["Location"].startswith("/accounts/login/")
            if status not in (401, 403, 405) and not to_login:
                failures.append((method, path, status))
    assert failures == []


def test_the_admin_refuses_an_anonymous_caller(client, objects):
    failures = []
    for route in (r for r in ROUTES if r.startswith("admin/")):
        if route in ("admin/login/", "admin/logout/"):
            continue
        path = concrete(route, {**objects, "app_label": "optimization"})
        path = re.sub(r"\([^)]*\)", "x", path)  # the admin's own regex routes
        response = client.get(path)
        if response.status_code == 200:
            failures.append(path)
        elif response.status_code == 302 and "/admin/" not in response["Location"]:
            failures.append((path, response["Location"]))
    assert failures == []


def _redirects_to_the_lab(response):
    assert response.status_code == 302  # not permanent: browsers must not cache where /lab/ is
    assert response["Location"] == "/lab/"


def _is_the_login_form(response):
    assert response.status_code == 200
    html = response.content.decode()
    assert '<form method="post" action="/accounts/login/"' in html
    assert 'name="username"' in html and '<input type="password" name="password"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def _refuses_a_logout_by_get(response):
    # Logging out changes state, so it takes a POST (with the CSRF token); a GET is refused.
    assert response.status_code == 405 and response["Allow"] == "POST, OPTIONS"


def _refuses_a_token_by_get(response):
    assert response.status_code == 405 and response["Allow"] == "POST, OPTIONS"
    assert response.json() == {"ok": False, "error": 'Method "GET" not allowed.'}


def _is_the_openapi_schema(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    schema = response.content.decode()
    assert schema.startswith("openapi: 3.0.3\n") and "\n  /api/jobs/:\n" in schema


def _is_swagger_ui_over_the_schema(response):
    assert response.status_code == 200
    html = response.content.decode()
    assert '<div id="swagger-ui"></div>' in html
    assert '<script src="/api/docs/?script="></script>' in html  # which loads /api/schema/


# What each public route answers an anonymous GET, exactly.
PUBLIC_ANSWERS = {
    "": _redirects_to_the_lab,
    "accounts/login/": _is_the_login_form,
    "accounts/logout/": _refuses_a_logout_by_get,
    "api/token/": _refuses_a_token_by_get,
    "api/schema/": _is_the_openapi_schema,
    "api/docs/": _is_swagger_ui_over_the_schema,
}


def test_every_public_route_has_its_answer_written_down():
    assert set(PUBLIC_ANSWERS) == set(PUBLIC)


@pytest.mark.parametrize("route", sorted(PUBLIC))
def test_the_public_routes_answer_without_a_login(client, route):
    PUBLIC_ANSWERS[route](client.get("/" + route))


def test_the_token_endpoint_exchanges_a_password_for_the_users_token(client, alice):
    wrong = client.post("/api/token/", {"username": "alice", "password": "guess"})
    assert wrong.status_code == 400 and wrong.json()["ok"] is False
    assert "Unable to log in" in wrong.json()["error"]
    right = client.post("/api/token/", {"username": "alice", "password": "alice-pw-123"})
    assert right.status_code == 200
    assert right.json() == {"token": Token.objects.get(user=alice).key}


def test_logging_out_takes_a_post_and_lands_on_the_login_page(client, alice):
    client.force_login(alice)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/lab/").status_code == 200  # the refused GET left her logged in
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get("/lab/")["Location"] == "/accounts/login/?next=/lab/"


def test_the_default_api_permission_is_not_allow_any(settings):
    assert settings.REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"] == [
        "rest_framework.permissions.IsAuthenticated"
    ]


def _visible_status(client, path) -> int:
    """GET, or POST where the route only takes POST."""
    status = client.get(path).status_code
    return client.post(path).status_code if status == 405 else status


TEAM_ROUTES = [r for r in OBJECT_ROUTES if not ("pk" in r and _scope(r, "pk") == "dataset")]


def test_an_outsider_gets_404_for_a_teams_objects(client, objects, charlie):
    client.force_login(charlie)
    failures = []
    for route in TEAM_ROUTES:
        path = concrete(route, objects)
        statuses = {client.get(path).status_code, client.post(path).status_code}
        if not (statuses <= {404, 405} and 404 in statuses):
            failures.append((path, statuses))
    assert failures == []


@pytest.mark.parametrize("who", ["bob", "staff"])
def test_a_colleague_and_staff_see_the_teams_objects(client, objects, bob, staff, who):
    client.force_login({"bob": bob, "staff": staff}[who])
    failures = []
    for route in TEAM_ROUTES:
        status = _visible_status(client, concrete(route, objects))
        if status == 404 or status >= 500:
            failures.append((route, status))
    assert failures == []


def test_job_lists_hold_only_what_the_user_may_see(client, objects, bob, charlie, staff):
    for user, expected in ((charlie, 0), (bob, 1), (staff, 1)):
        client.force_login(user)
        assert client.get("/api/jobs/").json()["count"] == expected, user
        assert (b"/lab/jobs/%d/" % objects["job"] in client.get("/lab/").content) == bool(expected)


# --- CSRF ------------------------------------------------------------------------------------


def test_an_htmx_post_without_the_csrf_token_is_refused(alice, objects):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    path = f"/lab/jobs/{objects['job']}/cancel/"
    refused = client.post(path, HTTP_HX_REQUEST="true")
    assert refused.status_code == 403 and b"CSRF" in refused.content
    refused = client.post(f"/api/jobs/{objects['job']}/rerun/")  # session auth
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    assert OptimizationJob.objects.count() == 1  # no re-run was created

    client.get("/lab/")  # the page sets the CSRF cookie; base.html puts it in hx-headers
    token = client.cookies["csrftoken"].value
    response = client.post(path, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 409  # accepted: the job is finished, so it cannot be cancelled
    response = client.post(f"/api/jobs/{objects['job']}/rerun/", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    rerun = OptimizationJob.objects.get(rerun_of=objects["job"])
    assert response.json()["id"] == rerun.id


def test_the_base_template_sends_the_token_with_every_htmx_request(client, alice, objects):
    client.force_login(alice)
    page = client.get("/lab/").content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in page


# --- security headers ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/accounts/login/", "/api/schema/", "/lab/"])
def test_responses_carry_the_security_headers(client, path):
    response = client.get(path)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    csp = response["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert (
        "unsafe-eval" not in csp
        and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    )


def test_the_api_docs_need_no_inline_script(client):
    page = client.get("/api/docs/").content.decode()
    assert re.search(r"<script>\s*\S", page) is None
    script = client.get("/api/docs/?script")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_production_settings_send_hsts_and_secure_cookies(tmp_path):
    from tests.project.test_settings import PRODUCTION

    code = (
        "import django; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/accounts/login/', secure=True, headers={'host': 'lab.example.com'});"
        "print(r.status_code); print(r.headers.get('Strict-Transport-Security'));"
        "print(r.cookies['csrftoken']['secure']);"
        "print(Client().get('/accounts/login/', headers={'host': 'lab.example.com'}).status_code)"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DATABASE_URL"}}
    env.update(PRODUCTION, BACKTESTLAB_VAR_DIR=str(tmp_path))
    env["DJANGO_SETTINGS_MODULE"] = "backtestlab.settings"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    status, hsts, secure_cookie, plain_http = out.stdout.split("\n")[:4]
    assert status == "200"
    assert hsts == "max-age=31536000; includeSubDomains; preload"
    assert secure_cookie == "True"
    assert plain_http == "301"  # http is redirected to https
