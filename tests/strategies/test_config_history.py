"""GET /api/strategies/{key}/config/history: the author's team reads who, why, which job and
run; everyone else reads the parameters and versions only (issue 14)."""

import pytest
from rest_framework.test import APIClient

from apps.strategies.models import ParameterChange
from tests.strategies.conftest import ranked

pytestmark = pytest.mark.django_db

HISTORY = "/api/strategies/sma_cross/config/history?symbol=BTC&timeframe=1h"
OUTSIDER_VIEW = {"from_version", "to_version", "old_params", "new_params", "dry_run"}


@pytest.fixture
def changes(alice, bob, charlie, sweep):
    """v1 by alice from her sweep, v2 by beat (no author) from it, v3 by charlie."""
    run = ranked(sweep)[0]
    common = {"strategy": "sma_cross", "symbol": "BTC", "timeframe": "1h", "objective": "sharpe"}
    rows = [
        (alice, "apply", "page", "alice retunes for the desk", sweep),
        (None, "apply", "beat", "scheduled sweep of the desk", sweep),
        (charlie, "restore", "api", "charlie rolls back", None),
    ]
    made = {}
    for version, (user, kind, source, reason, job) in enumerate(rows, start=1):
        made[version] = ParameterChange.objects.create(
            **common, kind=kind, source=source, reason=reason, user=user, job=job,
            run=run if job else None, from_version=version - 1, to_version=version,
            old_params={"fast": version}, new_params={"fast": version + 1},
        )  # fmt: skip
    return made


def history_as(user) -> dict[int, dict]:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(HISTORY)
    assert response.status_code == 200, response.content
    rows = response.json()["changes"]
    assert [r["to_version"] for r in rows] == [3, 2, 1]  # every version, newest first
    return {r["to_version"]: r for r in rows}


def assert_outsider_view(row: dict, change: ParameterChange) -> None:
    assert set(row) == OUTSIDER_VIEW, row
    assert (row["from_version"], row["to_version"]) == (change.from_version, change.to_version)
    assert (row["old_params"], row["new_params"]) == (change.old_params, change.new_params)


def test_an_outsider_reads_only_parameters_and_versions_of_other_teams(charlie, changes):
    rows = history_as(charlie)
    for version in (1, 2):  # alice's and her team's scheduled sweep
        assert_outsider_view(rows[version], changes[version])
    text = str(rows[1]) + str(rows[2])
    assert "alice" not in text and "desk" not in text and "page" not in text
    # his own change in full
    assert rows[3]["user"] == "charlie" and rows[3]["reason"] == "charlie rolls back"


def test_the_authors_team_and_staff_read_everything(alice, bob, staff, changes, sweep):
    for user in (alice, bob):
        rows = history_as(user)
        assert rows[1]["user"] == "alice" and rows[1]["reason"] == "alice retunes for the desk"
        assert rows[1]["job"] == sweep.id and rows[1]["run"] == changes[1].run_id
        # no author (beat): the team that may see its job reads it in full
        assert rows[2]["user"] is None and rows[2]["job"] == sweep.id
        assert rows[2]["reason"] == "scheduled sweep of the desk"
        assert_outsider_view(rows[3], changes[3])  # charlie is not of the desk
    rows = history_as(staff)
    assert [rows[v]["reason"] for v in (1, 2, 3)] == [c.reason for c in changes.values()]
