"""GET /me: the account, the member with his current places, and his affiliation history with place names."""

from __future__ import annotations

from datetime import timedelta

import pytest

from points_service.db import db, utcnow
from points_service.domain import home
from points_service.domain.ledger.credit import award
from points_service.domain.ledger.reading import home_summary
from points_service.domain.ledger.settlement import expire_redeemable, expiry_window
from points_service.domain.periods import PeriodKind, period_containing, to_rfc3339
from points_service.domain.policy import policy_in_force
from points_service.domain.structure import transfer_member
from points_service.models import JobRun, JobRunStatus, LedgerName
from tests.factories import auth_header, make_world
from tests.factories.boards import entry
from tests.factories.ledger import install_policy, member_fact
from tests.factories.market import fund


def expiring_this_month():
    """An instant whose redeemable credit expires at this month's end under 12 months' validity (the default)."""
    return expiry_window(period_containing(utcnow(), PeriodKind.MONTH).previous(), 12)[0] + timedelta(hours=1)


def me_of(client, user) -> dict:
    response = client.get("/api/v1/me", headers=auth_header(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def test_a_transferred_member_sees_his_current_places_and_every_affiliation_oldest_first(client):
    world = make_world()
    alice = world["alice"]
    moved_at = utcnow() - timedelta(days=3)
    alice.affiliations[0].valid_from = moved_at - timedelta(days=400)
    transfer_member(alice, world["edu1"], world["south"], None, when=moved_at)
    db.session.commit()

    me = me_of(client, world["users"]["alice"])

    assert me["user"]["id"] == world["users"]["alice"].id and me["user"]["display_name"] == "张晓丽"
    assert me["member"]["id"] == alice.id and me["member"]["name"] == "张晓丽"
    assert me["member"]["branch"] == {"id": world["edu1"].id, "name": "教育局第一党支部"}
    assert me["member"]["community"] == {"id": world["south"].id, "name": "南门社区"}
    assert me["member"]["grid"] is None and me["member"]["show_on_boards"] is True
    assert me["member"]["phone"].count("*") == 4
    former, current = me["affiliations"]
    assert former["branch"] == {"id": world["fin1"].id, "name": "财政局第一党支部"}
    assert former["community"]["name"] == "北门社区" and former["grid"] == {"id": world["north_grid"].id,
                                                                           "name": "北门一网格"}
    assert former["valid_to"] == current["valid_from"] == to_rfc3339(moved_at)
    assert current["branch"]["name"] == "教育局第一党支部" and current["grid"] is None and current["valid_to"] is None


def test_a_staff_account_has_roles_but_no_member_affiliations_points_or_ranks(client):
    world = make_world()

    me = me_of(client, world["users"]["secretary"])

    assert me["user"]["username"] == "secretary" and me["member"] is None and me["affiliations"] == []
    assert me["points"] is None and me["ranks"] is None
    assert [(r["role"], r["scope_id"], r["scope_name"]) for r in me["roles"]] == [
        ("branch_secretary", world["fin1"].id, "财政局第一党支部")]


def test_a_member_without_points_gets_zero_figures_and_is_on_no_board(client):
    world = make_world()

    me = me_of(client, world["users"]["bob"])

    assert me["points"]["standing"] == 0 and me["points"]["pending"] == 0 and me["points"]["expiring"]["points"] == 0
    for board in ("quarter", "standing"):
        assert me["ranks"][board]["on_board"] is False and me["ranks"][board]["ranks"] == []


def test_the_home_screen_uses_the_policy_version_in_force_now(client):
    """GET /me reads the in-force version's key with the account; a later version without expiry wins."""
    world = make_world()
    award(member_fact(world["alice"], "member.micro_wish"), at=expiring_this_month())
    user = world["users"]["alice"]
    assert me_of(client, user)["points"]["expiring"]["points"] == 5  # version 1: 12 months' validity

    install_policy(lambda doc: doc["redeemable_expiry"].update(validity_months=None),
                   effective_from=utcnow() - timedelta(minutes=5))
    install_policy(lambda doc: doc["redeemable_expiry"].update(validity_months=1),
                   effective_from=utcnow() + timedelta(days=1))  # not yet in force

    assert me_of(client, user)["points"]["expiring"]["points"] == 0


def test_a_transferred_member_on_both_boards_gets_each_affiliation_and_each_rank_once(client):
    """One statement joins the affiliations with the boards: two of each must not come back as four."""
    world = make_world()
    alice, now = world["alice"], utcnow()
    moved_at = now - timedelta(days=3)
    alice.affiliations[0].valid_from = moved_at - timedelta(days=400)
    transfer_member(alice, world["edu1"], world["south"], None, when=moved_at)
    entry(alice, 4, now)
    entry(alice, 3, now, ledger=LedgerName.STANDING)
    entry(world["bob"], 9, now)  # in her new community, not in her branch or department
    db.session.commit()

    me = me_of(client, world["users"]["alice"])

    assert [a["community"]["name"] for a in me["affiliations"]] == ["北门社区", "南门社区"]
    quarter, standing = me["ranks"]["quarter"], me["ranks"]["standing"]
    assert quarter["on_board"] and quarter["points"] == 4 and standing["on_board"]
    assert [(r["kind"], r["rank"]) for r in quarter["ranks"]] == [
        ("community", 2), ("street", 2), ("district", 2), ("all", 2), ("branch", 1), ("department", 1)]
    assert [r["kind"] for r in standing["ranks"]] == ["community", "street", "district", "all", "branch",
                                                      "department"]
    assert me["points"]["quarter"] == 4


def test_get_me_reads_again_once_when_a_version_with_another_validity_takes_effect(client, statements,
                                                                                    monkeypatch):
    """The statement is built with the validity last found in force and reads the version in force with it."""
    world = make_world()
    award(member_fact(world["alice"], "member.micro_wish"), at=expiring_this_month())
    db.session.commit()
    headers = auth_header(world["users"]["alice"])
    monkeypatch.setitem(home._validity_seen, "months", None)  # as a fresh process: no version seen yet

    def expiring_and_statements() -> tuple:
        db.session.remove()
        statements.clear()
        response = client.get("/api/v1/me", headers=headers)
        return response.get_json()["data"]["points"]["expiring"]["points"], len(statements)

    assert expiring_and_statements() == (5, 3)  # principal, read with no expiry, read again with 12 months
    assert expiring_and_statements() == (5, 2)
    install_policy(lambda doc: doc["redeemable_expiry"].update(validity_months=None),
                   effective_from=utcnow() - timedelta(minutes=5))
    assert expiring_and_statements() == (0, 4)  # + the new version's document, loaded once per process
    assert expiring_and_statements() == (0, 2)
    install_policy(effective_from=utcnow() - timedelta(minutes=4))  # the default file again: 12 months
    assert expiring_and_statements() == (5, 4)
    assert expiring_and_statements() == (5, 2)
    install_policy(effective_from=utcnow() - timedelta(minutes=3))  # the same validity: no second read
    assert expiring_and_statements() == (5, 3)


def test_get_me_reads_again_when_another_version_takes_effect_between_its_two_reads(client, monkeypatch):
    """Published within the publish slack, a version can be in force at the request's instant by its second read."""
    world = make_world()
    award(member_fact(world["alice"], "member.micro_wish"), at=expiring_this_month())
    db.session.commit()
    monkeypatch.setitem(home._validity_seen, "months", None)  # the first read guesses wrong: a second follows
    read_member, validities = home._read_member, []

    def publishing_after_the_first_read(principal, expected, now):
        rows = read_member(principal, expected, now)
        validities.append(expected[0])
        if len(validities) == 1:  # taking effect at the request's own instant: in force for the next read
            install_policy(lambda doc: doc["redeemable_expiry"].update(validity_months=None), effective_from=now)
        return rows

    monkeypatch.setattr(home, "_read_member", publishing_after_the_first_read)
    assert me_of(client, world["users"]["alice"])["points"]["expiring"]["points"] == 0
    assert validities == [None, 12, None]


def test_get_me_answers_503_rather_than_figures_of_another_validity_when_versions_keep_changing(client,
                                                                                                  monkeypatch):
    world = make_world()
    monkeypatch.setitem(home._validity_seen, "months", 1)  # never what the versions read say
    monkeypatch.setattr(home, "_validities_of", lambda row: (home._validity_seen["months"] + 1, None))

    response = client.get("/api/v1/me", headers=auth_header(world["users"]["alice"]))

    assert response.status_code == 503 and response.get_json()["code"] == "service_unavailable"


def redeemable_and_expiring(client, user) -> tuple:
    points = me_of(client, user)["points"]
    return points["redeemable"], points["expiring"]["points"]


def expire_last_month(policy) -> None:
    expire_redeemable(period_containing(utcnow(), PeriodKind.MONTH).previous(), policy)
    db.session.commit()


def test_points_expired_at_last_months_end_leave_the_home_screen_before_the_expiry_job_writes_them(client):
    """Between a month's end and the expiry job's run (day 1, 00:30, or later after downtime) orders cannot spend
    what expired; the home screen does not show it as redeemable or as expiring this month either."""
    policy = install_policy()
    world = make_world()
    fund(world["alice"], 10, at=utcnow() - timedelta(days=500))  # expired at the end of last month
    fund(world["alice"], 4, at=expiring_this_month())
    fund(world["alice"], 6)
    user = world["users"]["alice"]

    assert redeemable_and_expiring(client, user) == (10, 4)
    expire_last_month(policy)
    assert redeemable_and_expiring(client, user) == (10, 4)  # written now: not held back twice
    assert home_summary(world["alice"].id)["redeemable"] == 10


@pytest.mark.parametrize(("last_months", "this_months", "redeemable"), [
    (12, 6, 10),  # valid under last month's policy: last month's run expires nothing
    (6, 12, 0),  # expired under last month's policy: held back until the job writes it, then gone
], ids=["validity-shortened", "validity-lengthened"])
def test_what_the_home_screen_holds_back_follows_the_expired_months_own_policy(client, last_months, this_months,
                                                                              redeemable):
    month = period_containing(utcnow(), PeriodKind.MONTH)
    install_policy(lambda doc: doc["redeemable_expiry"].update(validity_months=last_months))
    install_policy(lambda doc: doc["redeemable_expiry"].update(validity_months=this_months),
                   effective_from=month.start)
    world = make_world()
    fund(world["alice"], 10, at=utcnow() - timedelta(days=250))  # within 12 months of last month's end, not 6
    user = world["users"]["alice"]

    assert me_of(client, user)["points"]["redeemable"] == redeemable
    assert home_summary(world["alice"].id)["redeemable"] == redeemable
    expire_last_month(policy_in_force(month.previous().last_instant))
    assert me_of(client, user)["points"]["redeemable"] == redeemable


@pytest.mark.parametrize(("status", "held"), [(JobRunStatus.SUCCEEDED, False), (JobRunStatus.FAILED, True)])
def test_only_a_succeeded_run_of_last_months_expiry_job_settles_it_for_everyone(client, status, held):
    """The job's run answers for every member at once (most have nothing to expire and get no entry); a run that
    failed wrote nothing, so what expired is still held back."""
    install_policy()
    world = make_world()
    fund(world["alice"], 10, at=utcnow() - timedelta(days=500))  # expired at the end of last month
    fund(world["alice"], 6)
    last_month = period_containing(utcnow(), PeriodKind.MONTH).previous()
    db.session.add(JobRun(job_id="redeemable_expiry", period=last_month.key, status=status))
    db.session.commit()

    assert me_of(client, world["users"]["alice"])["points"]["redeemable"] == (6 if held else 16)
