"""GET /leaderboards, GET /members/{id}/ranks and the ranks in GET /me, over HTTP."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.access import BoardNode, Home, Principal
from points_service.domain.boards.keys import Scope, ScopeKind
from points_service.domain.boards.pages import current_quarter, resolve_scope
from points_service.domain.errors import ValidationFailed
from tests.factories import auth_header, make_member, make_user, make_world
from tests.factories.boards import entry


@pytest.fixture
def world(app):
    world = make_world()
    world["dan"] = make_member(world["fin2"], world["north"], world["north_grid"], name="周丹")
    world["users"].update({name: make_user(member=world[name]) for name in ("carol", "dan")})
    now = utcnow()
    for name, points in (("alice", 9), ("bob", 7), ("carol", 7), ("dan", 3)):
        entry(world[name], points, now)
    db.session.commit()
    return world


def get(client, world, role: str, query: str):
    return client.get(f"/api/v1/leaderboards?{query}", headers=auth_header(world["users"][role]))


def test_the_city_board_ranks_ties_together_and_gives_the_callers_place(client, world):
    response = get(client, world, "bob", "subject=member&scope=all")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert [(item["rank"], item["points"]) for item in data["items"]] == [(1, 9), (2, 7), (2, 7), (4, 3)]
    assert data["total"] == 4 and data["me"] == {"rank": 2, "points": 7}
    assert data["period"] == str(current_quarter()) and data["items"][0]["subject"]["name"] == "张晓丽"
    assert data["items"][0]["reached_at"].endswith("+08:00")


def test_a_community_board_for_a_member_who_lives_there(client, world):
    data = get(client, world, "alice", f"scope=community:{world['north'].id}&period=standing").get_json()["data"]
    assert [item["rank"] for item in data["items"]] == [1, 2, 3] and data["me"] == {"rank": 1, "points": 9}
    assert data["board"] == "standing:all"


@pytest.mark.parametrize(("role", "scope"), [
    ("alice", "community:{south}"),  # a member sees only the communities he lives in
    ("alice", "organization:{education}"),
    ("secretary", "organization:{fin2}"),  # a secretary sees his own branch, not another
    ("community_admin", "region:{south}"),
    ("hr", "organization:{education}"),
])
def test_a_board_outside_the_callers_scopes_is_403(client, world, role, scope):
    scope = scope.format(**{key: world[key].id for key in ("south", "education", "fin2")})
    response = get(client, world, role, f"scope={scope}")
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"


@pytest.mark.parametrize(("role", "scope"), [
    ("secretary", "organization:{fin1}"), ("hr", "organization:{finance}"), ("community_admin", "region:{north}"),
    ("admin", "region:{south}"), ("bob", "organization:{finance}"), ("bob", "region:{street}"),
])
def test_a_board_inside_the_callers_scopes_is_200(client, world, role, scope):
    scope = scope.format(**{key: world[key].id for key in ("fin1", "finance", "north", "south", "street")})
    assert get(client, world, role, f"scope={scope}").status_code == 200


@pytest.mark.parametrize(("query", "field"), [
    ("period=2026-11-21", "period"),
    ("period=last-year", "period"),
    ("subject=team", "subject"),
    ("scope=planet:1", "scope"),
    ("scope=region:999999", "scope"),
    ("measure=median", "measure"),
    ("subject=member&measure=per_capita", "measure"),
    ("page=30&page_size=50", "page"),
    ("colour=red", "colour"),
])
def test_bad_arguments_are_422_with_chinese_field_errors(client, world, query, field):
    response = get(client, world, "admin", query)
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "validation_failed"
    messages = body["data"]["errors"][field] if field in body["data"]["errors"] else \
        body["data"]["errors"]["query"][field]
    assert any("\u4e00" <= char <= "\u9fff" for char in "".join(messages))


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize("scope", ["region:²", "organization:²", "community:¹²", "region:{north_arabic}",
                                   "community:{north_arabic}", "organization:{fin2_arabic}"])
@pytest.mark.parametrize("subject", ["member", "organization"])
def test_a_scope_id_in_other_than_ascii_digits_is_a_malformed_scope(client, world, scope, subject):
    """str.isdigit() accepts superscripts (which int() refuses) and Arabic-Indic digits (which int() reads):
    neither is an id, whichever place it would name."""
    scope = scope.format(north_arabic=str(world["north"].id).translate(ARABIC_INDIC),
                         fin2_arabic=str(world["fin2"].id).translate(ARABIC_INDIC))
    response = get(client, world, "admin", f"subject={subject}&scope={quote(scope)}")
    assert response.status_code == 422
    assert response.get_json()["data"]["errors"]["scope"] == [
        "范围应为 all、region:{id}、community:{id} 或 organization:{id}"]


@pytest.mark.parametrize(("scope", "message"), [
    ("community:{street}", "社区不存在"),  # a region, but not a community
    ("community:999999", "社区不存在"),
    ("region:999999", "区划不存在"),
    ("organization:999999", "组织不存在"),
])
def test_a_scope_naming_no_such_place_is_422_saying_which(client, world, scope, message):
    response = get(client, world, "admin", f"scope={scope.format(street=world['street'].id)}")
    assert response.status_code == 422 and response.get_json()["data"]["errors"]["scope"] == [message]


@pytest.mark.parametrize("scope", ["community:{north}", "region:{north}", "region:{north_grid}", "region:{street}",
                                   "region:{district}", "organization:{fin2}", "organization:{finance}"])
def test_a_members_own_place_gives_the_same_board_as_a_looked_up_scope(client, world, scope):
    """dan's places are resolved from his principal; the admin's request looks them up."""
    keys = ("north", "north_grid", "street", "district", "fin2", "finance")
    scope = scope.format(**{key: world[key].id for key in keys})
    own, looked_up = (get(client, world, role, f"scope={scope}").get_json()["data"] for role in ("dan", "admin"))
    assert own["items"] and own["items"] == looked_up["items"]
    assert (own["scope"], own["total"]) == (looked_up["scope"], looked_up["total"])
    assert own["me"] is not None and looked_up["me"] is None


@pytest.mark.parametrize("scope", ["community:{north_grid}", "community:{street}"])
def test_a_members_own_region_named_as_a_community_is_still_422_unless_it_is_one(client, world, scope):
    scope = scope.format(**{key: world[key].id for key in ("north_grid", "street")})
    response = get(client, world, "alice", f"scope={scope}")
    assert response.status_code == 422 and response.get_json()["data"]["errors"]["scope"] == ["社区不存在"]


def test_a_members_region_id_given_as_an_organization_is_looked_up_as_an_organization(app):
    """Regions and organizations number apart: one of his regions' ids, as an organization, is not his place."""
    missing = 10**9
    viewer = Principal(user_id=0, homes=(Home(True, "community", missing, f"/{missing}/"),))
    with pytest.raises(ValidationFailed) as caught:
        resolve_scope(f"organization:{missing}", viewer)
    assert caught.value.data == {"errors": {"scope": ["组织不存在"]}}
    assert resolve_scope(f"region:{missing}", viewer) == (Scope(ScopeKind.COMMUNITY, missing),
                                                           BoardNode(is_region=True, path=f"/{missing}/"))


def test_a_member_moved_to_another_community_no_longer_sees_his_old_one(client, world):
    from points_service.domain.structure import transfer_member

    transfer_member(world["dan"], world["fin2"], world["south"], world["south_grid"])
    db.session.commit()
    assert get(client, world, "dan", f"scope=community:{world['north'].id}").status_code == 403
    assert get(client, world, "dan", f"scope=community:{world['south'].id}").status_code == 200


def test_the_city_as_a_region_is_the_whole_city_board(client, world):
    data = get(client, world, "alice", f"scope=region:{world['city'].id}").get_json()["data"]
    assert data["scope"] == "all" and data["total"] == 4 and data["me"] == {"rank": 1, "points": 9}


def test_organizations_are_ranked_by_a_labelled_measure(client, world):
    data = get(client, world, "admin", "subject=organization&measure=participation").get_json()["data"]
    assert "参与率" in data["label"] and data["me"] is None
    # every member of both departments scored: a tie at 100 %, ordered by id
    assert [item["subject"]["name"] for item in data["items"]] == ["市财政局党委", "市教育局党委"]
    assert [(item["rank"], item["value"]) for item in data["items"]] == [(1, 1), (1, 1)]
    assert data["items"][0]["members"] == {"count": 3, "points": 19, "participants": 3}


def test_me_lists_the_members_rank_in_every_scope_he_belongs_to(client, world):
    data = client.get("/api/v1/me", headers=auth_header(world["users"]["bob"])).get_json()["data"]
    quarter = {rank["kind"]: rank["rank"] for rank in data["ranks"]["quarter"]["ranks"]}
    assert quarter == {"grid": 1, "community": 1, "street": 2, "district": 2, "all": 2, "branch": 1,
                       "department": 2}
    assert data["ranks"]["standing"]["points"] == 7 and data["ranks"]["standing"]["on_board"] is True
    admin = client.get("/api/v1/me", headers=auth_header(world["users"]["admin"])).get_json()["data"]
    assert admin["ranks"] is None


def test_member_ranks_for_a_period_are_scoped_like_the_member(client, world):
    path = f"/api/v1/members/{world['carol'].id}/ranks?period=standing"
    data = client.get(path, headers=auth_header(world["users"]["community_admin"])).get_json()["data"]
    assert {rank["kind"]: rank["rank"] for rank in data["ranks"]}["community"] == 2
    assert client.get(path, headers=auth_header(world["users"]["bob"])).status_code == 404  # no existence leak


def my_rank(client, world, role: str, query: str = ""):
    return client.get(f"/api/v1/me/rank?{query}", headers=auth_header(world["users"][role]))


def test_my_rank_gives_the_city_rank_with_ties_and_the_number_ranked(client, world):
    data = my_rank(client, world, "bob").get_json()["data"]
    assert (data["rank"], data["points"], data["total"], data["scope"]) == (2, 7, 4, "all")
    assert data["period"] == str(current_quarter()) and data["on_board"] is True and data["label"] == "全市"


@pytest.mark.parametrize(("who", "scope", "expected"), [
    ("dan", "community", (3, 3, "community:{north}")),  # alice 9, carol 7, dan 3 live in north
    ("dan", "grid", (2, 2, "grid:{north_grid}")),  # carol has no grid
    ("bob", "branch", (1, 2, "branch:{fin2}")),  # bob 7, dan 3
    ("dan", "department", (3, 3, "department:{finance}")),
    ("carol", "grid", (None, None, None)),  # she has no grid: no rank, but she is on the board
])
def test_my_rank_in_my_own_scope_of_a_kind(client, world, who, scope, expected):
    data = my_rank(client, world, who, f"scope={scope}&period=standing").get_json()["data"]
    rank, total, label = expected
    label = label and label.format(**{key: world[key].id for key in ("north", "north_grid", "fin2", "finance")})
    assert (data["rank"], data["total"], data["scope"]) == (rank, total, label)
    assert data["on_board"] is True and data["board"] == "standing:all"


def test_my_rank_on_a_board_without_my_points_says_so(client, world):
    data = my_rank(client, world, "alice", "period=2020-Q1").get_json()["data"]
    assert (data["on_board"], data["rank"], data["points"], data["total"]) == (False, None, 0, None)


def test_my_rank_is_shown_to_a_member_hidden_from_boards(client, world):
    world["bob"].show_on_boards = False
    db.session.commit()
    assert my_rank(client, world, "bob").get_json()["data"]["rank"] == 2


def test_my_rank_is_for_members_only(client, world):
    response = my_rank(client, world, "admin")
    assert response.status_code == 403 and response.get_json()["code"] == "member_required"


@pytest.mark.parametrize(("query", "field"), [("scope=planet", "scope"), ("period=2026-11-21", "period"),
                                              ("scope=community:1", "scope")])
def test_my_rank_refuses_bad_arguments_with_field_errors(client, world, query, field):
    response = my_rank(client, world, "bob", query)
    assert response.status_code == 422 and response.get_json()["code"] == "validation_failed"
    assert field in response.get_json()["data"]["errors"]


@pytest.mark.parametrize(("path", "expected"), [
    ("/api/v1/me/rank", 2),  # the principal, the rank card
    ("/api/v1/leaderboards?scope=all", 2),  # the principal, the page with its total and the caller's place
    # dan's own places: his principal holds their level or kind and path, nothing is looked up
    ("/api/v1/leaderboards?scope=community:{north}", 2),
    ("/api/v1/leaderboards?scope=region:{north_grid}", 2),
    ("/api/v1/leaderboards?scope=region:{street}", 2),
    ("/api/v1/leaderboards?scope=region:{district}", 2),
    ("/api/v1/leaderboards?scope=organization:{fin2}", 2),
    ("/api/v1/leaderboards?scope=organization:{finance}", 2),
    ("/api/v1/leaderboards?scope=region:{city}", 3),  # + the region's level and path: not one of his places
    ("/api/v1/me", 2),  # principal; account, affiliations, policy version, home figures and ranks in one
])
def test_hot_reads_take_a_fixed_number_of_statements_however_many_rows(client, world, statements, path, expected):
    for name, points in (("alice", 1), ("bob", 2)):  # more rows must not mean more statements
        entry(world[name], points, utcnow())
    db.session.commit()
    path = path.format(**{key: world[key].id for key in ("north", "north_grid", "fin2", "street", "district",
                                                        "finance", "city")})
    headers = auth_header(world["users"]["dan"])
    client.get(path, headers=headers)  # GET /me learns the policy in force on its first call (test_me_api)
    db.session.remove()  # a request starts with a fresh session, as under a server
    statements.clear()
    response = client.get(path, headers=headers)
    assert response.status_code == 200 and len(statements) == expected, statements


def test_a_page_writes_its_limit_and_offset_into_the_sql_so_one_plan_serves_every_call(client, world, statements):
    """As parameters, PostgreSQL's generic plan assumes a tenth of the board and a page is re-planned each call."""
    client.get("/api/v1/leaderboards?scope=all&page=2&page_size=3", headers=auth_header(world["users"]["dan"]))
    page = next(statement for statement in statements if "FROM board_scores JOIN members" in statement)
    assert "LIMIT 3 OFFSET 3" in page, page


@pytest.mark.postgres
def test_read_only_views_run_without_a_transaction_and_writing_views_inside_one(client, world):
    """No BEGIN/ROLLBACK round trips for the hot reads; a write still gets its transaction."""
    autocommit: list[bool] = []

    def record(conn, *_args):
        autocommit.append(conn.connection.driver_connection.autocommit)
    headers, north = auth_header(world["users"]["dan"]), world["north"].id
    db.session.remove()
    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        for path in ("/api/v1/me/rank", "/api/v1/leaderboards", "/api/v1/me"):
            assert client.get(path, headers=headers).status_code == 200
        reads = list(autocommit)
        autocommit.clear()
        assert client.post("/api/v1/reports", json={"community_id": north},
                           headers=headers).status_code in (201, 409)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert reads and all(reads)
    assert autocommit and not any(autocommit)
