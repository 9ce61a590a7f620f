"""排行榜 pages: the board the API serves (same ranks, ties, measures), its chart, scope refusals as the
API's, the period's stars and flags, and the points-per-month chart on a member's and an organization's page."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from points_service.db import db, utcnow
from points_service.domain.boards.pages import current_quarter
from points_service.domain.ledger.monthly import last_months
from points_service.domain.periods import LOCAL_TZ
from points_service.models import SubjectType
from tests.console.helpers import sign_in, text
from tests.factories import auth_header
from tests.factories.boards import entry

CHART = re.compile(r"id=\"(board-chart|points-chart|grade-chart)\" data-chart='([^']*)'")


@pytest.fixture
def scored(world):
    now = utcnow()
    for name, points in (("alice", 9), ("bob", 7), ("carol", 7)):
        entry(world[name], points, now)
    # A second point on her line, in an earlier month and an earlier quarter than now (62 days back was still
    # this quarter from December 2 on, and the board then counted it).
    entry(world["alice"], 4, current_quarter().start - timedelta(days=20))
    entry(world["fin1"], 5, now, subject_type=SubjectType.ORGANIZATION)
    db.session.commit()
    return world


def chart(page: str, name: str) -> dict:
    found = {key: json.loads(value.replace("&#34;", '"')) for key, value in CHART.findall(page)}
    return found[name]


def ranks(page: str) -> list[int]:
    return [int(r) for r in re.findall(r'<tr data-rank="(\d+)"', page)]


def test_the_city_board_shows_the_apis_ranks_and_a_bar_chart_of_the_top(client, scored):
    api = client.get("/api/v1/leaderboards?scope=all", headers=auth_header(scored["users"]["admin"])).get_json()
    sign_in(client, "secretary")
    page = text(client.get("/console/boards"))
    assert ranks(page) == [item["rank"] for item in api["data"]["items"]] == [1, 2, 2]
    option = chart(page, "board-chart")
    assert option["series"][0]["data"] == [7.0, 7.0, 9.0]  # best at the top of a horizontal bar chart
    assert option["yAxis"]["data"][-1] == "张晓丽"


def test_an_organization_board_by_participation_labels_its_measure(client, scored):
    sign_in(client, "admin")
    page = text(client.get("/console/boards?subject=organization&measure=participation&period=standing"))
    assert "党员参与率" in page and "市财政局党委" in page and "教育局党委" in page


@pytest.mark.parametrize(("username", "scope"), [
    ("secretary", "organization:{fin2}"), ("north_admin", "region:{south}"), ("finance_hr", "organization:{education}"),
])
def test_a_board_outside_the_users_scope_is_refused_like_the_api(client, scored, username, scope):
    scope = scope.format(**{key: scored[key].id for key in ("fin2", "south", "education")})
    sign_in(client, username)
    response = client.get(f"/console/boards?scope={scope}")
    assert response.status_code == 403 and "无权" in text(response)


@pytest.mark.parametrize(("username", "scope"), [
    ("secretary", "organization:{fin1}"), ("north_admin", "region:{north}"), ("finance_hr", "organization:{finance}"),
])
def test_a_board_inside_the_users_scope_is_shown(client, scored, username, scope):
    scope = scope.format(**{key: scored[key].id for key in ("fin1", "north", "finance")})
    sign_in(client, username)
    response = client.get(f"/console/boards?scope={scope}")
    assert response.status_code == 200 and f'value="{scope}" selected' in text(response)


def test_a_bad_period_is_a_field_error_not_a_crash(client, scored):
    sign_in(client, "secretary")
    response = client.get("/console/boards?period=2026-11-21")
    assert response.status_code == 422 and "期间" in text(response)


def test_the_members_page_draws_her_points_per_month_from_the_month_totals(client, scored):
    sign_in(client, "secretary")
    option = chart(text(client.get(f"/console/members/{scored['alice'].id}")), "points-chart")
    months = [m.key for m in last_months()]
    assert option["xAxis"]["data"] == months
    values = option["series"][0]["data"]
    assert values[-1] == 9.0 and sum(values) == 13.0


def test_the_organizations_page_draws_its_own_points_beside_its_members_sum(client, scored):
    sign_in(client, "finance_hr")
    option = chart(text(client.get(f"/console/organizations/{scored['finance'].id}")), "points-chart")
    own, members = (series["data"] for series in option["series"])
    assert own[-1] == 0.0  # the department itself earned nothing; its branch fin1 did (not counted as its own)
    assert members[-1] == 16.0  # alice 9 + bob 7 (both in finance's branches); carol is in education


def test_the_organizations_page_shows_the_years_figures_for_a_single_day_rather_than_zeros(client, scored):
    def rollup(query: str) -> str:
        page = text(client.get(f"/console/organizations/{scored['finance'].id}{query}"))
        return re.search(r"党员汇总.*?</section>", page, re.S).group(0)

    sign_in(client, "finance_hr")
    today = utcnow().astimezone(LOCAL_TZ).date()
    assert rollup(f"?period={today.isoformat()}") == rollup("") == rollup(f"?period={today.year}")
    assert f"<small>{today.year}</small>" in rollup("") and "参与 2 人" in rollup("")


def test_another_branchs_member_trend_is_refused(client, scored):
    sign_in(client, "secretary")
    assert client.get(f"/console/members/{scored['bob'].id}").status_code == 404  # like a missing member
