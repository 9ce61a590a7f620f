"""The roles × operations table for every endpoint of the foundation, tested in full (OWASP API1/3/5):
who gets 200/201, who gets 403 (404 for a member outside one's scope), anonymous gets 401; lists are scoped
to exactly the right members;
no response carries openid, unionid, session_key, a phone hash or a full phone number."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token

from points_service.db import db
from points_service.models import AuditEntry, Role, User
from tests.factories import auth_header, make_user, make_wechat_identity, make_world

ROLES = ["anonymous", "unbound", "alice", "bob", "secretary", "community_admin", "hr", "org_admin", "admin"]
SIGNED_IN = ROLES[2:]

# Which members each principal may see (make_world: alice in 财政一支部/北门, bob in 财政二支部/南门,
# carol in 教育一支部/北门; the secretary runs 财政一支部, the community admin 北门, HR 财政局党委, and the
# org admin 教育局党委).
VISIBLE = {
    "alice": {"alice"},
    "bob": {"bob"},
    "secretary": {"alice"},
    "community_admin": {"alice", "carol"},
    "hr": {"alice", "bob"},
    "org_admin": {"carol"},
    "admin": {"alice", "bob", "carol"},
}

OPENID, UNIONID, SESSION_KEY = "oAliceOpenid000000000000001", "uAliceUnionid00000000000001", "aliceSessionKey0000000=="
FULL_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


@pytest.fixture
def world(app):
    world = make_world()
    world["users"]["org_admin"] = make_user((Role.ORG_ADMIN, world["education"].id), username="edu_org_admin")
    make_wechat_identity(OPENID, world["users"]["alice"], unionid=UNIONID, session_key=SESSION_KEY)
    world["unbound_identity"] = make_wechat_identity("oStrangerOpenid00000000001")
    db.session.commit()
    return world


def headers_for(world, role: str) -> dict:
    if role == "anonymous":
        return {}
    if role == "unbound":
        token = create_access_token(identity=f"w:{world['unbound_identity'].id}")
        return {"Authorization": f"Bearer {token}"}
    return auth_header(world["users"][role])


def new_user_body(world) -> dict:
    return {"username": "new_secretary", "password": "Strong-pass-2026",
            "roles": [{"role": "branch_secretary", "scope_type": "organization", "scope_id": world["fin2"].id}]}


def call(client, world, role: str, operation: str):
    method, _, path = operation.partition(" ")
    for name in ("alice", "bob", "carol"):
        path = path.replace("{" + name + "}", str(world[name].id))
    path = path.replace("{year}", "2025")
    for placeholder, value in SELECTION_PLACEHOLDERS.items():
        path = path.replace(placeholder, value)
    # A fixed request id: a random one could by chance hold eleven digits that look like a phone.
    headers = {**headers_for(world, role), "X-Request-ID": "access-matrix-test"}
    if method in ("POST", "PUT"):
        body = BODIES[operation] if operation in BODIES else new_user_body(world)
        return client.open(path, method=method, json=body, headers=headers)
    return client.get(path, headers=headers)


# Selections (业务之星, 流动红旗, the calendar): ids of runs, objections and awards that do not exist, so that
# those allowed get 404 (authorization comes before the lookup) and the others 403.
SELECTION_PLACEHOLDERS = {"{run}": "999999", "{objection}": "999999", "{award}": "999999", "{day}": "2026-10-08",
                          "{user}": "999999"}
SELECTION_ROUTES = {"{run}": "<int:run_id>", "{objection}": "<int:objection_id>", "{award}": "<int:award_id>",
                    "{day}": "<day>", "{user}": "<int:user_id>"}
BODIES = {
    "POST /api/v1/stars/runs": {"period": "2026-Q3"},
    "POST /api/v1/stars/runs/{run}/objections": {"member_id": 1, "reason": "异议"},
    "POST /api/v1/stars/runs/{run}/objections/{objection}/decision": {"upheld": False},
    "POST /api/v1/red-flags/awards": {"period": "2026-Q3"},
    "POST /api/v1/stars/awards/{award}/withdraw": {"reason": "撤销"},
    "POST /api/v1/red-flags/awards/{award}/withdraw": {"reason": "撤销"},
    "PUT /api/v1/calendar/days/{day}": {"working": False, "name": "假日"},
    "POST /api/v1/admin/users/{user}/disable": {"reason": "离岗"},
    "POST /api/v1/admin/users/{user}/enable": {},
}


def everyone_signed_in(success: int = 200) -> dict:
    return {"anonymous": 401, "unbound": 403, **dict.fromkeys(SIGNED_IN, success)}


def viewers_of(member: str, refused: int = 403) -> dict:
    return {"anonymous": 401, "unbound": 403,
            **{role: 200 if member in VISIBLE[role] else refused for role in SIGNED_IN}}


def hidden_from_others(member: str) -> dict:
    """A member outside one's scope answers 404 like a missing one: his existence does not leak."""
    return viewers_of(member, refused=404)


MATRIX = {
    "GET /api/v1/me": everyone_signed_in(),
    "GET /api/v1/regions": everyone_signed_in(),
    "GET /api/v1/communities": everyone_signed_in(),
    "GET /api/v1/organizations": everyone_signed_in(),
    "GET /api/v1/members": everyone_signed_in(),
    "GET /api/v1/members/{alice}": hidden_from_others("alice"),
    "GET /api/v1/members/{bob}": hidden_from_others("bob"),
    "GET /api/v1/members/{carol}": hidden_from_others("carol"),
    "POST /api/v1/admin/users": {**{role: 403 for role in SIGNED_IN}, "anonymous": 401, "unbound": 403,
                                 "admin": 201},
    # Disabling and enabling accounts: admins only, refused before the (missing) account is looked up.
    "POST /api/v1/admin/users/{user}/disable": {**viewers_of("nobody"), "admin": 404},
    "POST /api/v1/admin/users/{user}/enable": {**viewers_of("nobody"), "admin": 404},
    # HR exports: authorization comes before the lookup, so those allowed get 404 not_settled in this world.
    "GET /api/v1/annual/{year}": {**viewers_of("nobody"), "hr": 404, "org_admin": 404, "admin": 404},
    "GET /api/v1/annual/{year}/scores": {**viewers_of("nobody"), "hr": 404, "org_admin": 404, "admin": 404},
    "POST /api/v1/annual/{year}/settle": {**viewers_of("nobody"), "admin": 201},
    "POST /api/v1/stars/runs": {**viewers_of("nobody"), "admin": 201},
    "GET /api/v1/stars/runs": {**viewers_of("nobody"), "community_admin": 200, "admin": 200},
    "GET /api/v1/stars/runs/{run}": {**viewers_of("nobody"), "community_admin": 404, "admin": 404},
    "GET /api/v1/stars/runs/{run}/candidates": {**viewers_of("nobody"), "community_admin": 404, "admin": 404},
    "POST /api/v1/stars/runs/{run}/publish": {**viewers_of("nobody"), "admin": 404},
    "POST /api/v1/stars/runs/{run}/objections": everyone_signed_in(404),  # anyone may object during 公示
    "POST /api/v1/stars/runs/{run}/objections/{objection}/decision": {**viewers_of("nobody"), "admin": 404},
    "POST /api/v1/stars/runs/{run}/finalize": {**viewers_of("nobody"), "admin": 404},
    "GET /api/v1/stars?period=2026-Q3": everyone_signed_in(),
    "POST /api/v1/red-flags/awards": {**viewers_of("nobody"), "admin": 201},
    "GET /api/v1/red-flags?period=2026-Q3": everyone_signed_in(),
    "GET /api/v1/red-flags/awards/{award}/candidates": {**viewers_of("nobody"), "admin": 404},
    "POST /api/v1/stars/awards/{award}/withdraw": {**viewers_of("nobody"), "admin": 404},
    "POST /api/v1/red-flags/awards/{award}/withdraw": {**viewers_of("nobody"), "admin": 404},
    "GET /api/v1/calendar/days?year=2026": {**viewers_of("nobody"), "admin": 200},
    "PUT /api/v1/calendar/days/{day}": {**viewers_of("nobody"), "admin": 200},
    # Leaderboards: the whole-city board is open to every signed-in user (scoped boards: test_leaderboards_api.py).
    "GET /api/v1/leaderboards": everyone_signed_in(),
    "GET /api/v1/leaderboards?subject=organization&measure=per_capita&period=standing": everyone_signed_in(),
    "GET /api/v1/members/{alice}/ranks": hidden_from_others("alice"),
    # One's own rank card: members only (the staff accounts of this world are not members).
    "GET /api/v1/me/rank?scope=community": {"anonymous": 401, "unbound": 403,
                                            **{role: 200 if role in ("alice", "bob") else 403 for role in SIGNED_IN}},
    "GET /api/v1/members/{carol}/ranks?period=standing": hidden_from_others("carol"),
}
CASES = [(operation, role, expected[role]) for operation, expected in MATRIX.items() for role in ROLES]


def test_the_matrix_covers_every_foundation_endpoint(app):
    """A new endpoint must be added to the table above, or this fails."""
    foundation = {"me", "structure", "admin", "annual", "stars", "red_flags", "calendar", "boards"}
    routes = {
        f"{method} {rule.rule}" for rule in app.url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}
        if rule.endpoint.partition(".")[0] in foundation
    }
    tabled = {re.sub(r"\{(alice|bob|carol)\}", "<int:member_id>", op).replace("{year}", "<int:year>")
              for op in MATRIX}
    tabled = {_route_of(op) for op in tabled}
    assert routes == tabled


def _route_of(operation: str) -> str:
    for placeholder, route in SELECTION_ROUTES.items():
        operation = operation.replace(placeholder, route)
    return operation.partition("?")[0]


@pytest.mark.parametrize(("operation", "role", "status"), CASES, ids=[f"{o} as {r}" for o, r, _ in CASES])
def test_each_role_gets_its_status_and_no_response_leaks_secrets_or_phones(client, world, operation, role, status):
    response = call(client, world, role, operation)
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"code", "message", "data", "request_id"}
    if status == 403:
        assert body["code"] in {"forbidden", "binding_required", "member_required"} and body["data"] is None
    if status == 401:
        assert body["code"] == "unauthorized"
    text = response.get_data(as_text=True)
    hashes = db.session.scalars(sa.text("SELECT phone_hash FROM members")).all()
    for secret in (OPENID, UNIONID, SESSION_KEY, "openid", "unionid", "session_key", "phone_hash",
                   "password", *hashes):
        assert secret not in text
    assert not FULL_PHONE.search(text)


@pytest.mark.parametrize("role", list(VISIBLE))
def test_member_lists_hold_exactly_the_members_in_scope(client, world, role):
    body = client.get("/api/v1/members?page_size=100", headers=headers_for(world, role)).get_json()["data"]
    expected = {world[name].id for name in VISIBLE[role]}
    assert {item["id"] for item in body["items"]} == expected
    assert body["total"] == len(expected)


@pytest.mark.parametrize(("role", "query"), [
    ("secretary", "branch_id={edu1}"),
    ("secretary", "community_id={south}"),
    ("community_admin", "community_id={south}"),
    ("community_admin", "branch_id={fin2}"),
    ("hr", "branch_id={edu1}"),
    ("alice", "branch_id={fin2}"),
    ("alice", "name=李"),
])
def test_filters_narrow_a_list_but_never_widen_it(client, world, role, query):
    query = query.format(**{key: world[key].id for key in ("edu1", "fin2", "south")})
    body = client.get(f"/api/v1/members?{query}", headers=headers_for(world, role)).get_json()["data"]
    assert body["items"] == [] and body["total"] == 0


def test_a_member_missing_from_the_roster_is_404(client, world):
    assert client.get("/api/v1/members/999999", headers=headers_for(world, "admin")).status_code == 404


def test_an_admin_creates_a_scoped_console_user_and_it_is_audited(client, world):
    response = client.post("/api/v1/admin/users", json=new_user_body(world), headers=headers_for(world, "admin"))
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert data["username"] == "new_secretary"
    assert data["roles"] == [{"role": "branch_secretary", "scope_type": "organization",
                              "scope_id": world["fin2"].id}]
    audit = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.create"))
    assert audit.actor_id == world["users"]["admin"].id and audit.target_id == str(data["id"])
    login = client.post("/api/v1/auth/login", json={"username": "new_secretary", "password": "Strong-pass-2026"})
    token = login.get_json()["data"]["access_token"]
    listed = client.get("/api/v1/members", headers={"Authorization": f"Bearer {token}"}).get_json()["data"]
    assert [item["id"] for item in listed["items"]] == [world["bob"].id]


def test_refused_user_creation_leaves_no_account(client, world):
    for role in ("secretary", "community_admin", "hr", "org_admin", "alice"):
        client.post("/api/v1/admin/users", json=new_user_body(world), headers=headers_for(world, role))
    assert db.session.scalar(sa.select(User).where(User.username == "new_secretary")) is None


@pytest.mark.parametrize(("change", "field"), [
    ({"is_admin": True}, "is_admin"),
    ({"id": 1}, "id"),
    ({"password_hash": "x"}, "password_hash"),
    ({"member_id": 1}, "member_id"),
])
def test_unknown_fields_in_a_new_user_are_422_with_the_field_named(client, world, change, field):
    body = {**new_user_body(world), **change}
    response = client.post("/api/v1/admin/users", json=body, headers=headers_for(world, "admin"))
    assert response.status_code == 422 and field in response.get_json()["data"]["errors"]
    assert db.session.scalar(sa.select(User).where(User.username == "new_secretary")) is None


@pytest.mark.parametrize("grant", [
    {"role": "branch_secretary", "scope_type": "organization", "scope_id": 1, "scope_path": ""},
    {"role": "superuser", "scope_type": "city"},
    {"role": "branch_secretary", "scope_type": "city"},  # a city-wide secretary would see everyone
    {"role": "community_admin", "scope_type": "region"},  # no scope id
    {"role": "community_admin", "scope_type": "region", "scope_id": 999999},  # no such region
    {"role": "hr", "scope_type": "region", "scope_id": 1},  # HR is scoped to an organization
    {"role": "admin", "scope_type": "city", "scope_id": True},
])
def test_a_malformed_or_mis_scoped_grant_is_422(client, world, grant):
    body = {**new_user_body(world), "roles": [grant]}
    response = client.post("/api/v1/admin/users", json=body, headers=headers_for(world, "admin"))
    assert response.status_code == 422
    assert db.session.scalar(sa.select(User).where(User.username == "new_secretary")) is None


@pytest.mark.parametrize("password", ["short1", "onlyletterslong", "12345678901234"])
def test_an_admin_cannot_set_a_weak_password(client, world, password):
    body = {**new_user_body(world), "password": password}
    response = client.post("/api/v1/admin/users", json=body, headers=headers_for(world, "admin"))
    assert response.status_code == 422 and "password" in response.get_json()["data"]["errors"]


def test_a_taken_username_is_409(client, world):
    body = {**new_user_body(world), "username": "secretary"}
    response = client.post("/api/v1/admin/users", json=body, headers=headers_for(world, "admin"))
    assert response.status_code == 409 and response.get_json()["code"] == "username_taken"


def test_me_shows_roles_with_their_scopes_by_value(client, world):
    data = client.get("/api/v1/me", headers=headers_for(world, "hr")).get_json()["data"]
    assert data["member"] is None
    assert data["roles"] == [{"role": "hr", "scope_type": "organization", "scope_id": world["finance"].id,
                              "scope_name": "市财政局党委"}]


def test_a_repeated_grant_is_422_not_a_database_error(client, world):
    body = new_user_body(world)
    body["roles"] = body["roles"] * 2
    response = client.post("/api/v1/admin/users", json=body, headers=headers_for(world, "admin"))
    assert response.status_code == 422 and "roles" in response.get_json()["data"]["errors"]


def test_a_city_wide_grant_takes_no_scope_id(client, world):
    body = {**new_user_body(world), "roles": [{"role": "admin", "scope_type": "city", "scope_id": world["fin1"].id}]}
    response = client.post("/api/v1/admin/users", json=body, headers=headers_for(world, "admin"))
    assert response.status_code == 422 and "roles" in response.get_json()["data"]["errors"]
