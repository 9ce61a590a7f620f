"""What-if preview: a candidate policy replayed over a period's facts, nothing written."""

from __future__ import annotations

import copy

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.ledger.corrections import reverse_entry
from points_service.domain.ledger.credit import award
from points_service.domain.ledger.totals import total_of
from points_service.domain.policy import default_policy_document
from points_service.models import LedgerEntry, LedgerName, PolicyVersion
from tests.factories import auth_header, make_world
from tests.factories.ledger import install_policy, local, member_fact


@pytest.fixture
def world(app):
    world = make_world()
    award(member_fact(world["alice"], "member.activity_hour", units=4), at=local(2026, 8, 2, 10))
    award(member_fact(world["bob"], "member.micro_wish"), at=local(2026, 8, 3, 10))
    award(member_fact(world["carol"], "member.micro_wish"), at=local(2026, 8, 4, 10))
    return world


def candidate(mutate) -> dict:
    document = copy.deepcopy(default_policy_document())
    mutate(document)
    return document


def preview(client, user, document, period="2026-Q3"):
    return client.post("/api/v1/policy/preview", json={"period": period, "document": document},
                       headers=auth_header(user))


def test_doubling_hour_points_moves_the_volunteer_from_last_to_first_without_writing(client, world):
    entries_before = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry))
    document = candidate(lambda doc: doc["items"]["member.activity_hour"].update(points=2))
    body = preview(client, world["users"]["admin"], document).get_json()
    assert body["code"] == "ok"
    alice, *others = body["data"]["changes"]  # the biggest rank move first
    assert alice == {"subject_id": world["alice"].id, "name": "张晓丽", "points_before": 4, "points_after": 8,
                     "delta": 4, "rank_before": 3, "rank_after": 1}
    assert [(c["delta"], c["rank_before"], c["rank_after"]) for c in others] == [(0, 1, 2), (0, 1, 2)]
    assert body["data"]["subjects"] == 3 and body["data"]["changed"] == 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == entries_before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PolicyVersion)) == 1


def test_a_tighter_cap_is_simulated_in_credit_order(client, world):
    document = candidate(lambda doc: doc["items"]["member.micro_wish"]["caps"].update(month=2))
    changes = preview(client, world["users"]["admin"], document).get_json()["data"]["changes"]
    after = {c["subject_id"]: (c["points_after"], c["rank_after"]) for c in changes}
    assert after == {world["alice"].id: (4, 1), world["bob"].id: (2, 2), world["carol"].id: (2, 2)}


def test_an_invalid_candidate_is_refused_naming_the_field(client, world):
    document = candidate(lambda doc: doc["items"]["member.activity_hour"].update(points=-1))
    response = preview(client, world["users"]["admin"], document)
    assert response.status_code == 422 and response.get_json()["code"] == "policy_invalid"
    assert "items.member.activity_hour.points" in response.get_json()["data"]["errors"]


def test_only_admins_may_preview(client, world):
    assert preview(client, world["users"]["hr"], default_policy_document()).status_code == 403
    assert client.post("/api/v1/policy/preview", json={}).status_code == 401


def test_the_policy_in_force_previews_no_change_when_a_year_cap_was_used_up_before_the_period(client, app):
    world = make_world()
    for day in range(1, 6):  # 5 × 2 points in February: the item's year cap of 10 is reached
        award(member_fact(world["alice"], "member.suggestion_adopted"), at=local(2026, 2, day, 10))
    [august] = award(member_fact(world["alice"], "member.suggestion_adopted"), at=local(2026, 8, 2, 10))
    assert august.points == 0
    body = preview(client, world["users"]["admin"], default_policy_document()).get_json()
    assert body["data"]["changed"] == 0 and body["data"]["changes"] == []


def test_a_reversed_award_gives_its_room_back_in_the_preview_as_when_crediting(client, app):
    world = make_world()
    admin = world["users"]["admin"]
    [first] = [e for e in award(member_fact(world["alice"], "member.micro_wish"), at=local(2026, 8, 2, 10))
               if e.ledger == LedgerName.ASSESSMENT]
    award(member_fact(world["alice"], "member.micro_wish"), at=local(2026, 8, 3, 10))
    reverse_entry(principal_for(admin), first.id, "重复上报", at=local(2026, 8, 4, 10))
    third = award(member_fact(world["alice"], "member.micro_wish"), at=local(2026, 8, 5, 10))
    assert {entry.points for entry in third} == {5}  # the month cap of 10 has room again
    body = preview(client, admin, default_policy_document()).get_json()
    assert body["data"]["changed"] == 0 and body["data"]["changes"] == []


@pytest.mark.parametrize("months", [(6, 7), (7, 8)], ids=["reversed-in-the-next-period", "reversed-in-the-period"])
def test_an_award_reversed_in_a_later_month_gives_its_item_room_back_to_its_own_month_in_the_preview(client, app,
                                                                                                      months):
    """As when crediting: the month the reversal is credited in is capped as if it was not there."""
    world = make_world()
    admin, (filled, later) = world["users"]["admin"], months
    [first, _] = award(member_fact(world["alice"], "member.micro_wish"), at=local(2026, filled, 2, 10))
    award(member_fact(world["alice"], "member.micro_wish"), at=local(2026, filled, 3, 10))  # the month cap of 10
    reverse_entry(principal_for(admin), first.id, "重复上报", at=local(2026, later, 1, 10))
    granted = [award(member_fact(world["alice"], "member.micro_wish"), at=local(2026, later, day, 10))[0].points
               for day in (2, 3, 4)]
    assert granted == [5, 5, 0]
    body = preview(client, admin, default_policy_document()).get_json()
    assert body["data"]["changed"] == 0 and body["data"]["changes"] == []


def test_a_candidate_previews_what_crediting_under_it_grants_when_an_award_is_reversed_a_month_later(client, app):
    """Alice's facts previewed under a candidate (4 points a wish, 9 a month) give what the same facts credited
    under it give Bob: June's award reversed in July leaves July's cap as it was (4, 4 and 1), no more room."""
    world = make_world()
    admin = world["users"]["admin"]

    def history(member):
        [june, _] = award(member_fact(member, "member.micro_wish"), at=local(2026, 6, 2, 10))
        award(member_fact(member, "member.micro_wish"), at=local(2026, 6, 3, 10))
        reverse_entry(principal_for(admin), june.id, "重复上报", at=local(2026, 7, 1, 10))
        return [award(member_fact(member, "member.micro_wish"), at=local(2026, 7, day, 10))[0].points
                for day in (2, 3, 4)]

    assert history(world["alice"]) == [5, 5, 0]

    def change(doc):
        doc["items"]["member.micro_wish"].update(points=4, caps={"month": 9})

    [alice] = preview(client, admin, candidate(change)).get_json()["data"]["changes"]
    assert (alice["points_before"], alice["points_after"]) == (5, 4)  # -5 reversed, then 5 + 5 against 4 + 4 + 1
    install_policy(change, effective_from=local(2026, 7, 1))  # the candidate, in force for the period
    assert history(world["bob"]) == [4, 4, 1]
    assert total_of("member", world["bob"].id, LedgerName.ASSESSMENT, "2026-Q3").net == alice["points_after"]
