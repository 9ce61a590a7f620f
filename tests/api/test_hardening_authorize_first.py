"""Role-restricted endpoints answer 403 before they parse a body: a member (or any user without the roles an
endpoint needs) never learns the body's schema from 422 field errors, and garbage costs no parsing."""

from __future__ import annotations

import pytest
from werkzeug.routing import AnyConverter, IntegerConverter

from tests.factories import auth_header, make_world

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# What a member himself may write: sign-in, check-in and check-out, sign-ups, self-reports and reports to his
# community, 积分超市 orders, objections during a 业务之星 publicity, photo evidence, his subscriptions and his
# inbox. Every other write needs a role.
MEMBER_WRITES = {
    "auth.wechat_login", "auth.bind", "auth.password_login", "auth.refresh", "auth.logout",
    "activities.check_in", "activities.check_out", "activities.sign_up", "activities.withdraw",
    "records.submit_member_record", "records.resubmit", "reports.submit_member_report",
    "market.place_order", "market.cancel_own_order", "stars.raise_objection",
    "uploads.upload_evidence", "notifications.grant_subscriptions", "notifications.read_message",
}
GARBAGE = b'{"username": 1, "roles": "x", "points": "NaN", "unknown": [1,'


def _value(converter) -> object:
    if isinstance(converter, AnyConverter):
        return sorted(converter.items)[0]
    return 1 if isinstance(converter, IntegerConverter) else "1"


def write_operations(app) -> list[tuple[str, str, str]]:
    adapter = app.url_map.bind("localhost")
    operations = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        values = {name: _value(converter) for name, converter in rule._converters.items()}
        path = adapter.build(rule.endpoint, values)
        operations += [(method, path, rule.endpoint) for method in sorted(rule.methods & WRITE_METHODS)]
    return operations


def role_restricted_writes(app) -> list[tuple[str, str, str]]:
    return [op for op in write_operations(app) if op[2] not in MEMBER_WRITES]


@pytest.fixture
def world(app):
    return make_world()


def test_the_walk_finds_the_role_restricted_writes(app):
    endpoints = {endpoint for _method, _path, endpoint in role_restricted_writes(app)}
    assert {"admin.create", "points.adjust", "policy.publish", "market.create_item", "stars.publish",
            "lifecycle.transfer", "imports.import_file", "approvals.batch"} <= endpoints
    assert len(endpoints) >= 33


@pytest.mark.parametrize("member", ["alice", "bob"])
def test_a_member_gets_403_not_field_errors_from_every_role_restricted_write(app, client, world, member):
    headers = auth_header(world["users"][member])
    answers = {}
    for method, path, endpoint in role_restricted_writes(app):
        response = client.open(path, method=method, data=GARBAGE, content_type="application/json", headers=headers)
        answers[f"{method} {path} ({endpoint})"] = (response.status_code, response.get_json()["code"])
    wrong = {operation: answer for operation, answer in answers.items() if answer != (403, "forbidden")}
    assert wrong == {}


def test_a_secretary_gets_403_not_field_errors_from_admin_only_writes(client, world):
    headers = auth_header(world["users"]["secretary"])
    for path in ("/api/v1/admin/users", "/api/v1/adjustments", "/api/v1/policy/versions", "/api/v1/stars/runs",
                 "/api/v1/red-flags/awards", "/api/v1/annual/2026/settle"):
        response = client.post(path, data=GARBAGE, content_type="application/json", headers=headers)
        assert (response.status_code, response.get_json()["code"]) == (403, "forbidden"), path


def test_anonymous_callers_get_401_from_every_write_but_sign_in(app, client):
    signing_in = {"auth.wechat_login", "auth.password_login"}
    for method, path, endpoint in write_operations(app):
        if endpoint in signing_in:
            continue
        response = client.open(path, method=method, data=GARBAGE, content_type="application/json")
        assert response.status_code == 401, (method, path)


def test_a_role_holder_still_gets_field_errors_for_a_bad_body(client, world):
    response = client.post("/api/v1/admin/users", json={"username": 1}, headers=auth_header(world["users"]["admin"]))
    assert response.status_code == 422 and "username" in response.get_json()["data"]["errors"]
