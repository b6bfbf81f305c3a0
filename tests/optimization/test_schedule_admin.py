"""The job-template admin: who may add or change a scheduled sweep, who may turn its
auto-apply on, and a form that checks a template as the API checks a job (nothing stored
when it refuses)."""

import json

import pytest
from django.contrib.auth.models import Permission
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from apps.market.models import Dataset
from apps.optimization.models import JobTemplate
from tests.factories import SMALL_GRID

pytestmark = pytest.mark.django_db

ADD = "/admin/optimization/jobtemplate/add/"


def with_perms(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def editor(staff):
    """Staff who may add, change and see templates, but not apply to production."""
    return with_perms(staff, "add_jobtemplate", "change_jobtemplate", "view_jobtemplate")


def template_form(owner, datasets, /, **overrides) -> dict:
    form = {
        "name": "weekly BTC",
        "strategy": "sma_cross",
        "datasets": [d.id for d in datasets[:1]],
        "rolling_days": "30",
        "parameter_grid": json.dumps(SMALL_GRID),
        "objective": "sharpe",
        "costs": json.dumps({"commission_pct": 0.1}),
        "auto_apply": "off",
        "min_improvement_pct": "5",
        "owner": owner.id,
        "periodic_task": "",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def errors_of(response) -> dict:
    return response.context["adminform"].form.errors


def assert_nothing_stored():
    assert JobTemplate.objects.count() == 0 and PeriodicTask.objects.count() == 0


# --- who may write a template ---


def test_staff_with_the_add_permission_store_a_checked_template_and_its_schedule(
    client, editor, alice, datasets
):
    client.force_login(editor)
    response = client.post(ADD, template_form(alice, datasets))
    assert response.status_code == 302, errors_of(response)
    template = JobTemplate.objects.get()
    assert (template.name, template.strategy, template.owner, template.rolling_days) == (
        "weekly BTC",
        "sma_cross",
        alice,
        30,
    )
    assert list(template.datasets.all()) == datasets[:1]
    # the grid and the costs are stored in their checked, complete form
    assert template.parameter_grid == {k: list(v) for k, v in SMALL_GRID.items()}
    assert template.costs["commission_pct"] == 0.1 and set(template.costs) > {"commission_pct"}
    task = template.periodic_task
    assert task.task == "apps.optimization.tasks.fire_template"
    assert json.loads(task.args) == [template.id]
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "2", "0")


def test_staff_without_the_add_permission_get_403(client, staff, alice, datasets):
    client.force_login(with_perms(staff, "view_jobtemplate", "apply_parameters"))
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, template_form(alice, datasets)).status_code == 403
    assert_nothing_stored()


@pytest.mark.parametrize("name", ["alice", "bob", "charlie"])
def test_non_staff_cannot_reach_the_template_admin(client, request, datasets, name):
    user = with_perms(request.getfixturevalue(name), "add_jobtemplate", "apply_parameters")
    client.force_login(user)
    response = client.post(ADD, template_form(user, datasets))
    assert response.status_code == 302 and response.url.startswith("/admin/login/")
    assert_nothing_stored()


def test_changing_a_template_needs_the_change_permission(client, staff, alice, datasets):
    template = JobTemplate.objects.create(
        name="weekly", strategy="sma_cross", owner=alice, parameter_grid=SMALL_GRID
    )
    url = f"/admin/optimization/jobtemplate/{template.id}/change/"
    form = template_form(alice, datasets, name="renamed")
    client.force_login(with_perms(staff, "view_jobtemplate", "add_jobtemplate"))
    assert client.post(url, form).status_code == 403
    template.refresh_from_db()
    assert template.name == "weekly"
    client.force_login(with_perms(staff, "change_jobtemplate"))
    assert client.post(url, form).status_code == 302
    template.refresh_from_db()
    assert template.name == "renamed" and template.periodic_task is not None


# --- auto-apply needs the apply permission, of the editor and of the owner ---


@pytest.mark.parametrize("mode", ["apply", "dry_run"])
def test_staff_without_the_apply_permission_cannot_turn_auto_apply_on(
    client, editor, alice, datasets, mode
):
    owner = with_perms(alice, "apply_parameters")
    client.force_login(editor)
    response = client.post(ADD, template_form(owner, datasets, auto_apply=mode))
    assert response.status_code == 400
    [message] = errors_of(response)["auto_apply"]
    assert "needs the strategies.apply_parameters permission" in message
    assert "owner" not in errors_of(response)
    assert_nothing_stored()


def test_auto_apply_is_refused_for_an_owner_without_the_apply_permission(
    client, editor, charlie, datasets
):
    client.force_login(with_perms(editor, "apply_parameters"))
    response = client.post(ADD, template_form(charlie, datasets, auto_apply="apply"))
    assert response.status_code == 400
    assert list(errors_of(response)) == ["owner"]
    assert (
        "charlie lacks the strategies.apply_parameters permission"
        in errors_of(response)["owner"][0]
    )
    assert_nothing_stored()


def test_an_editor_and_owner_with_the_apply_permission_turn_auto_apply_on(
    client, editor, bob, datasets
):
    owner = with_perms(bob, "apply_parameters")
    client.force_login(with_perms(editor, "apply_parameters"))
    response = client.post(ADD, template_form(owner, datasets, auto_apply="apply"))
    assert response.status_code == 302, errors_of(response)
    template = JobTemplate.objects.get()
    assert (template.auto_apply, template.owner) == ("apply", owner)


def test_an_auto_applying_template_cannot_be_changed_without_the_apply_permission(
    client, editor, alice, datasets
):
    """Its grid and datasets decide what the next firing applies to production."""
    owner = with_perms(alice, "apply_parameters")
    template = JobTemplate.objects.create(
        name="weekly",
        strategy="sma_cross",
        owner=owner,
        parameter_grid=SMALL_GRID,
        auto_apply="apply",
    )
    url = f"/admin/optimization/jobtemplate/{template.id}/change/"
    client.force_login(editor)
    grid = {**SMALL_GRID, "fast": [2]}
    response = client.post(
        url, template_form(owner, datasets, auto_apply="apply", parameter_grid=json.dumps(grid))
    )
    assert response.status_code == 400 and "auto_apply" in errors_of(response)
    template.refresh_from_db()
    assert template.parameter_grid == SMALL_GRID


# --- the form checks every field; a refusal stores nothing ---


@pytest.fixture
def funding(datasets):
    return Dataset.objects.filter(kind=Dataset.Kind.FUNDING).order_by("id").first()


@pytest.fixture
def other_task(db):
    crontab = CrontabSchedule.objects.create(minute="0", hour="3")
    return PeriodicTask.objects.create(
        name="reaper", task="apps.optimization.tasks.reap", crontab=crontab
    )


BAD = [
    ({"strategy": "nope"}, "strategy", "Select a valid choice"),
    ({"datasets": []}, "datasets", "datasets must be a non-empty list"),
    ({"datasets": "funding"}, "datasets", "holds funding, but this strategy needs candles data"),
    ({"strategy": "market_state"}, "datasets", "runs on 1m candles only"),
    ({"parameter_grid": json.dumps({"fast": [1]})}, "parameter_grid", "fast"),
    ({"parameter_grid": json.dumps({"speed": [5]})}, "parameter_grid", "speed"),
    (
        {
            "parameter_grid": json.dumps(
                {
                    "fast": {"start": 2, "stop": 500, "step": 1},
                    "slow": {"start": 3, "stop": 2000, "step": 1},
                }
            )
        },
        "parameter_grid",
        "combinations",
    ),
    ({"parameter_grid": "[5, 10]"}, "parameter_grid", "at least one parameter"),
    ({"parameter_grid": "{oops"}, "parameter_grid", "Enter a valid JSON"),
    ({"objective": "luck"}, "objective", "Select a valid choice"),
    ({"costs": json.dumps({"commission_pct": -1})}, "costs", "costs.commission_pct must be"),
    ({"costs": json.dumps({"tip": 1})}, "costs", "unknown cost field 'tip'"),
    ({"costs": "[1]"}, "costs", "costs must be an object"),
    ({"rolling_days": "0"}, "rolling_days", "greater than or equal to 1"),
    ({"min_improvement_pct": "-1"}, "min_improvement_pct", "greater than or equal to 0"),
    ({"auto_apply": "always"}, "auto_apply", "Select a valid choice"),
    ({"owner": ""}, "owner", "This field is required"),
    ({"name": ""}, "name", "This field is required"),
    ({"periodic_task": "other"}, "periodic_task", "runs apps.optimization.tasks.reap"),
]


@pytest.mark.parametrize(
    "overrides, field, message", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)]
)
def test_a_bad_template_is_refused_naming_the_field_and_nothing_is_stored(
    client, editor, alice, datasets, funding, other_task, overrides, field, message
):
    if overrides.get("datasets") == "funding":
        overrides = {"datasets": [funding.id]}
    if overrides.get("periodic_task") == "other":
        overrides = {"periodic_task": other_task.id}
    client.force_login(editor)
    response = client.post(ADD, template_form(alice, datasets, **overrides))
    assert response.status_code == 400
    errors = errors_of(response)
    assert field in errors and message in " ".join(errors[field]), errors
    assert JobTemplate.objects.count() == 0
    assert list(PeriodicTask.objects.all()) == [other_task]


def test_a_periodic_task_picked_in_admin_is_made_to_fire_this_template(
    client, editor, alice, datasets
):
    crontab = CrontabSchedule.objects.create(minute="30", hour="4")
    task = PeriodicTask.objects.create(
        name="left over",
        crontab=crontab,
        args="[999]",
        task="apps.optimization.tasks.fire_template",
    )
    client.force_login(editor)
    response = client.post(ADD, template_form(alice, datasets, periodic_task=task.id))
    assert response.status_code == 302, errors_of(response)
    template = JobTemplate.objects.get()
    task.refresh_from_db()
    assert template.periodic_task == task and json.loads(task.args) == [template.id]
    assert PeriodicTask.objects.count() == 1
