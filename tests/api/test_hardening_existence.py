"""No existence leaks: for every id-taking operation, an existing object outside the caller's scope and an id
that names nothing get the same answer (status, code and message). Callers: a member of another branch and
community, and the community admin of another community. The operations are read from the url_map, so a new
id-taking route is walked too (and a new kind of id fails until it has an object here)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from werkzeug.routing import AnyConverter, IntegerConverter

from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.checkin.scans import check_in
from points_service.domain.lifecycle.status import deactivate_member
from points_service.domain.market.orders import OrderRequest, place_order
from points_service.domain.reports.reporting import submit_member_report
from points_service.models import ActivityStatus, DeactivationReason, Role
from tests.factories import auth_header, make_user, make_world
from tests.factories.activities import make_activity, scan, scan_body
from tests.factories.boards import entry
from tests.factories.market import fund, make_item
from tests.factories.notifications import enqueue
from tests.factories.records import self_report

MISSING = 2_000_000_000
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
NOT_IDS = {"year", "kind", "day", "name"}  # path values that name no object
BODIES = {  # plausible bodies, so that member writes reach their lookup instead of stopping at validation
    "activities.check_in": scan_body("000000"), "activities.check_out": scan_body("000000"),
    "records.resubmit": {"description": "补充说明"}, "stars.raise_objection": {"member_id": 1, "reason": "异议"},
    "market.cancel_own_order": None,
}


@pytest.fixture
def world(app):
    world = make_world()
    north, alice, alice_user = world["north"], world["alice"], world["users"]["alice"]
    world["users"]["south_admin"] = make_user((Role.COMMUNITY_ADMIN, world["south"].id), username="south_admin")
    published = make_activity(north)
    item = make_item(north)
    db.session.commit()
    fund(alice, 100)
    alice_principal = principal_for(alice_user)
    world["ids"] = {
        "member_id": alice.id,
        "org_id": world["fin1"].id,
        "activity_id": make_activity(north, status=ActivityStatus.PROPOSED, proposed_by=world["fin1"]).id,
        "checkin_id": check_in(alice_principal, published.id, scan(published, utcnow())).id,
        "entry_id": entry(alice, 10).id,
        "record_id": self_report(alice_user).id,
        "report_id": submit_member_report(alice_principal, north.id).id,
        "item_id": item.id,
        "order_id": place_order(alice_principal, OrderRequest(item.id)).id,
        "message_id": enqueue(alice).id,
        "change_id": deactivate_member(principal_for(world["users"]["admin"]), alice.id, DeactivationReason.RETIRED,
                                       "退休", (utcnow() + timedelta(days=30)).date()).id,
    }
    db.session.commit()
    return world


def operations(app) -> list[tuple[str, str, dict]]:
    found = []
    for rule in app.url_map.iter_rules():
        params = {n: c for n, c in rule._converters.items() if n not in NOT_IDS}
        if rule.rule.startswith("/api/v1/") and params:
            found += [(method, rule.endpoint, rule._converters) for method in sorted(rule.methods & METHODS)]
    return found


def _url(app, endpoint: str, converters: dict, ids: dict, missing: str | None) -> str:
    values = {}
    for name, converter in converters.items():
        if isinstance(converter, AnyConverter):
            values[name] = sorted(converter.items)[0]
        elif name in NOT_IDS:
            values[name] = 2026 if isinstance(converter, IntegerConverter) else "2026-01-01"
        else:
            values[name] = MISSING if name == missing else ids.get(name, MISSING)
    return app.url_map.bind("localhost").build(endpoint, values)


def answer(client, method, url, endpoint, headers):
    body = BODIES.get(endpoint, {})
    response = client.open(url, method=method, json=body, headers=headers)
    payload = response.get_json() or {}
    return response.status_code, payload.get("code"), payload.get("message")


def test_every_kind_of_id_has_an_object_to_hide(app, world):
    kinds = {name for *_rest, converters in operations(app) for name in converters if name not in NOT_IDS}
    untested = kinds - set(world["ids"]) - {"approval_id", "award_id", "run_id", "objection_id"}
    assert untested == set()


@pytest.mark.parametrize("who", ["bob", "south_admin"])
def test_an_out_of_scope_object_answers_like_a_missing_one(app, client, world, who):
    headers, ids = auth_header(world["users"][who]), world["ids"]
    leaks = {}
    for method, endpoint, converters in operations(app):
        for name in converters:
            if name in NOT_IDS or name not in ids:
                continue
            existing = answer(client, method, _url(app, endpoint, converters, ids, None), endpoint, headers)
            if 200 <= existing[0] < 300:
                continue  # the caller may see this object: there is nothing to hide
            missing = answer(client, method, _url(app, endpoint, converters, ids, name), endpoint, headers)
            if existing != missing:
                leaks[f"{method} {endpoint} {name}"] = (existing, missing)
    assert leaks == {}, "\n".join(f"{k}: {v}" for k, v in sorted(leaks.items()))
