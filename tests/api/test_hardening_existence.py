"""No existence leaks: for every id-taking operation, an existing object outside the caller's scope and an id
that names nothing get the same answer (status, code and message). Callers: a member of another branch and
community, and the community admin of another community. The operations are read from the url_map, so a new
id-taking route is walked too (and a new kind of id fails until it has an object here).

Some objects are city-wide: a 业务之星 run is reviewed by every community admin and, in publicity, open to
everyone's objections; 流动红旗 awards are listed to everyone. Where the caller may act on such an object the
answer is 2xx and there is nothing to hide; where he may not (publishing a run, deciding an objection,
withdrawing an award, a flag's candidates: admins only) he is refused before any lookup, existing or not."""

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
from points_service.domain.stars.runs import raise_objection
from points_service.models import ActivityStatus, DeactivationReason, Role
from tests.factories import auth_header, make_branch, make_member, make_user, make_world
from tests.factories.activities import make_activity, scan, scan_body
from tests.factories.awards import published_star_run, qualify_for_stars, red_flag_of, star_award
from tests.factories.boards import entry
from tests.factories.market import fund, make_item
from tests.factories.notifications import enqueue
from tests.factories.records import self_report

MISSING = 2_000_000_000
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
NOT_IDS = {"year", "kind", "day", "name"}  # path values that name no object
BODIES = {  # plausible bodies, so that writes reach their lookup instead of stopping at validation
    "activities.check_in": scan_body("000000"), "activities.check_out": scan_body("000000"),
    "records.resubmit": {"description": "补充说明"}, "market.cancel_own_order": None,
    "approvals.reject": {"reason": "不符"}, "approvals.request_info": {"comment": "请补充"},
    "activities.cancel": {"reason": "场地临时征用"},
}


@pytest.fixture
def world(app):
    world = make_world()
    north, alice, alice_user = world["north"], world["alice"], world["users"]["alice"]
    world["users"]["south_admin"] = make_user((Role.COMMUNITY_ADMIN, world["south"].id), username="south_admin")
    published = make_activity(north)
    item = make_item(north)
    star_user = make_user(member=make_member(make_branch(world["finance"]), north, name="赵星"))
    db.session.commit()
    fund(alice, 100)
    alice_principal = principal_for(alice_user)
    admin = world["users"]["admin"]
    star = qualify_for_stars(star_user, admin)  # his branch's only member: it holds the district's flag too
    run = published_star_run(admin)
    world["star"] = star
    world["ids"] = {
        "member_id": alice.id,
        "org_id": world["fin1"].id,
        "activity_id": make_activity(north, status=ActivityStatus.PROPOSED, proposed_by=world["fin1"]).id,
        "checkin_id": check_in(alice_principal, published.id, scan(published, utcnow())).id,
        "entry_id": entry(alice, 10).id,
        "record_id": (record := self_report(alice_user)).id,
        "approval_id": f"record:{record.id}",
        "report_id": submit_member_report(alice_principal, north.id).id,
        "item_id": item.id,
        "order_id": place_order(alice_principal, OrderRequest(item.id)).id,
        "message_id": enqueue(alice).id,
        "change_id": deactivate_member(principal_for(world["users"]["admin"]), alice.id, DeactivationReason.RETIRED,
                                       "退休", (utcnow() + timedelta(days=30)).date()).id,
        "run_id": run.id,
        "user_id": world["users"]["secretary"].id,  # accounts: admins only, refused before any lookup
        "objection_id": raise_objection(alice_principal, run.id, star.id, "服务时长存疑").id,
        # One name, two tables: a (blueprint, name) entry gives each blueprint's routes its own object.
        ("stars", "award_id"): star_award(run, star).id,
        ("red_flags", "award_id"): red_flag_of(admin).id,
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


def id_for(ids: dict, endpoint: str, name: str):
    """The object that ``name`` takes in ``endpoint``: its blueprint's own entry, else the name's (None: no object)."""
    blueprint = endpoint.partition(".")[0]
    return ids.get((blueprint, name), ids.get(name))


def bodies(world) -> dict:
    """BODIES, and an objection naming a real candidate of the run (any member may object while it is public)."""
    return {**BODIES, "stars.raise_objection": {"member_id": world["star"].id, "reason": "异议"}}


def _url(app, endpoint: str, converters: dict, ids: dict, missing: str | None) -> str:
    values = {}
    for name, converter in converters.items():
        if isinstance(converter, AnyConverter):
            values[name] = sorted(converter.items)[0]
        elif name in NOT_IDS:
            values[name] = 2026 if isinstance(converter, IntegerConverter) else "2026-01-01"
        else:
            found = id_for(ids, endpoint, name)
            values[name] = MISSING if name == missing or found is None else found
    return app.url_map.bind("localhost").build(endpoint, values)


def answer(client, method, url, body, headers):
    response = client.open(url, method=method, json=body, headers=headers)
    payload = response.get_json() or {}
    return response.status_code, payload.get("code"), payload.get("message")


def test_every_kind_of_id_has_an_object_to_hide(app, world):
    untested = {f"{endpoint} {name}" for _method, endpoint, converters in operations(app) for name in converters
                if name not in NOT_IDS and id_for(world["ids"], endpoint, name) is None}
    assert untested == set()


@pytest.mark.parametrize("who", ["bob", "south_admin"])
def test_an_out_of_scope_object_answers_like_a_missing_one(app, client, world, who):
    headers, ids, body_of = auth_header(world["users"][who]), world["ids"], bodies(world)
    leaks = {}
    for method, endpoint, converters in operations(app):
        body = body_of.get(endpoint, {})
        for name in converters:
            if name in NOT_IDS or id_for(ids, endpoint, name) is None:
                continue
            existing = answer(client, method, _url(app, endpoint, converters, ids, None), body, headers)
            if 200 <= existing[0] < 300:
                continue  # the caller may see this object: there is nothing to hide
            missing = answer(client, method, _url(app, endpoint, converters, ids, name), body, headers)
            if existing != missing:
                leaks[f"{method} {endpoint} {name}"] = (existing, missing)
    assert leaks == {}, "\n".join(f"{k}: {v}" for k, v in sorted(leaks.items()))
