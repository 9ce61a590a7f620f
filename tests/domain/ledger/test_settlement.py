"""Decay, reset and expiry: amounts, floors, idempotence, and entries a member can read."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.ledger.corrections import SettlementEntryNotReversible, reverse_entry
from points_service.domain.ledger.credit import award, insert_entry
from points_service.domain.ledger.reading import home_summary
from points_service.domain.ledger.settlement import decay_standing, expire_redeemable, reset_assessment
from points_service.domain.ledger.totals import compare_totals, total_of
from points_service.domain.periods import parse_period
from points_service.domain.policy import policy_in_force
from points_service.jobs.runner import run_job
from points_service.jobs.schedule import JOBS_BY_ID
from points_service.models import ALL_TIME, EntryKind, LedgerEntry, LedgerName, SourceType
from tests.factories import make_world
from tests.factories.ledger import install_policy, local, member_fact


@pytest.fixture
def world(app):
    return make_world()


def give(member, points_item="member.commend_city", times=1, at=None):
    for n in range(times):
        award(member_fact(member, points_item), at=at or local(2026, 10, 5 + n, 9))


def standing(member) -> Decimal:
    return total_of("member", member.id, LedgerName.STANDING, ALL_TIME).balance


def entries(kind: EntryKind) -> list[LedgerEntry]:
    return list(db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.kind == kind).order_by(LedgerEntry.id)))


def test_exponential_decay_takes_the_half_life_share_of_the_month_and_is_visible_in_the_ledger(world):
    alice = world["alice"]
    give(alice, times=2)  # 20 points in October
    run_job(JOBS_BY_ID["standing_decay"], parse_period("2026-10"))
    share = 1 - Decimal("0.5") ** (Decimal(31) / Decimal(180))  # October has 31 days; half-life 180
    expected = (Decimal(20) * share).quantize(Decimal("0.01"), ROUND_HALF_UP)
    [decay] = entries(EntryKind.DECAY)
    assert (decay.ledger, decay.points, decay.subject_id) == (LedgerName.STANDING, -expected, alice.id)
    assert decay.credited_at == parse_period("2026-10").end and "2026-10" in decay.reason
    assert standing(alice) == Decimal(20) - expected
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2026-10").net == Decimal(20)  # HR figure untouched


def test_rerunning_a_decay_period_changes_nothing(world):
    give(world["alice"])
    policy = policy_in_force(local(2026, 11, 1))
    decay_standing(parse_period("2026-10"), policy)
    db.session.commit()
    before = standing(world["alice"])
    assert decay_standing(parse_period("2026-10"), policy) == {"entries": 0}
    db.session.commit()
    assert len(entries(EntryKind.DECAY)) == 1 and standing(world["alice"]) == before
    assert run_job(JOBS_BY_ID["standing_decay"], parse_period("2026-10")) is not None
    assert run_job(JOBS_BY_ID["standing_decay"], parse_period("2026-10")) is None


def test_linear_decay_stops_at_the_floor(world):
    install_policy(lambda doc: doc["standing"].update(kind="linear", points_per_period=4, half_life_days=None, floor=7))
    give(world["alice"])  # 10
    for month in ("2026-10", "2026-11", "2026-12"):
        run_job(JOBS_BY_ID["standing_decay"], parse_period(month))
    assert [e.points for e in entries(EntryKind.DECAY)] == [Decimal(-3)]
    assert standing(world["alice"]) == Decimal(7)


def test_decay_uses_the_balance_at_the_cutoff_not_at_run_time(world):
    install_policy(lambda doc: doc["standing"].update(kind="linear", points_per_period=100, half_life_days=None))
    give(world["alice"])  # 10 in October
    give(world["alice"], at=local(2026, 11, 1, 0, 5))  # 10 after the cutoff, before the job runs
    run_job(JOBS_BY_ID["standing_decay"], parse_period("2026-10"))
    assert [e.points for e in entries(EntryKind.DECAY)] == [Decimal(-10)]
    assert standing(world["alice"]) == Decimal(10)


def test_yearly_reset_zeroes_the_assessment_balance_but_not_what_the_year_earned(world):
    alice = world["alice"]
    give(alice, times=3, at=None)
    award(member_fact(alice, "member.no_show"), at=local(2026, 12, 30))
    run_job(JOBS_BY_ID["assessment_reset"], parse_period("2026"))
    [reset] = entries(EntryKind.RESET)
    assert reset.points == Decimal(-25) and reset.credited_at == parse_period("2027").start
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, ALL_TIME).balance == Decimal(0)
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2026").net == Decimal(25)
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2027").net == Decimal(0)
    assert standing(alice) == Decimal(25)  # the standing score is not reset
    assert run_job(JOBS_BY_ID["assessment_reset"], parse_period("2026")) is None


def redeem(member, points, at):
    insert_entry(LedgerEntry(
        subject_type="member", subject_id=member.id, ledger=LedgerName.REDEEMABLE, kind=EntryKind.REDEMPTION,
        item_code="store.redemption", points=-Decimal(points), points_requested=-Decimal(points), occurred_at=at,
        credited_at=at, source_type=SourceType.ADMIN, source_id=f"order-{at.isoformat()}",
        idempotency_key=f"redemption:{member.id}:{at.isoformat()}"))
    db.session.commit()


def test_redeemable_points_expire_oldest_first_after_the_validity_window(world):
    alice = world["alice"]
    award(member_fact(alice, "member.micro_wish", units=1), at=local(2025, 1, 10))  # 5 redeemable
    award(member_fact(alice, "member.pairing_visit"), at=local(2025, 1, 20))  # 5 more
    redeem(alice, 3, local(2025, 3, 1))
    award(member_fact(alice, "member.micro_wish"), at=local(2025, 6, 10))  # 5
    run_job(JOBS_BY_ID["redeemable_expiry"], parse_period("2026-01"))  # credits before 2025-02-01 expire
    run_job(JOBS_BY_ID["redeemable_expiry"], parse_period("2026-06"))  # credits before 2025-07-01 expire
    assert [e.points for e in entries(EntryKind.EXPIRY)] == [Decimal(-7), Decimal(-5)]
    assert total_of("member", alice.id, LedgerName.REDEEMABLE, ALL_TIME).balance == Decimal(0)
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2025").net == Decimal(15)  # redemption never lowers it


def test_the_home_screen_announces_exactly_what_the_next_expiry_run_takes(world):
    alice = world["alice"]
    award(member_fact(alice, "member.micro_wish", units=1), at=local(2025, 1, 10))
    award(member_fact(alice, "member.pairing_visit"), at=local(2025, 1, 20))
    redeem(alice, 3, local(2025, 3, 1))  # spent from the oldest credits
    award(member_fact(alice, "member.micro_wish"), at=local(2025, 6, 10))
    for month, announced in (("2026-01", 7), ("2026-06", 5)):
        period = parse_period(month)
        assert home_summary(alice.id, now=period.start)["expiring"] == {"points": announced, "on": period.end}
        run_job(JOBS_BY_ID["redeemable_expiry"], period)
        assert entries(EntryKind.EXPIRY)[-1].points == -announced
    assert home_summary(alice.id, now=local(2026, 7, 1))["expiring"]["points"] == 0


def test_a_month_settled_after_the_next_one_does_not_expire_the_same_credits_again(world):
    """November settled before October (an operator's ``flask jobs run-once`` of a month the scheduler left out):
    November's entry, dated at November's end, still counts against October's netting."""
    alice = world["alice"]
    award(member_fact(alice, "member.micro_wish"), at=local(2025, 10, 5, 9))  # 5, expired at October 2026's end
    db.session.commit()
    run_job(JOBS_BY_ID["redeemable_expiry"], parse_period("2026-11"))
    run_job(JOBS_BY_ID["redeemable_expiry"], parse_period("2026-10"))
    assert [e.points for e in entries(EntryKind.EXPIRY)] == [Decimal(-5)]
    assert total_of("member", alice.id, LedgerName.REDEEMABLE, ALL_TIME).balance == Decimal(0)
    assert compare_totals() == []


@pytest.mark.parametrize("months", [("2026-10", "2026-11"), ("2026-11", "2026-10")], ids=["in-order", "reversed"])
def test_months_settled_in_either_order_expire_what_settling_them_in_order_does(world, months):
    """October's netting is the larger (its old credit was spent only in November, from a fresh credit's worth):
    whatever the order, 5 expire, once."""
    alice = world["alice"]
    award(member_fact(alice, "member.micro_wish"), at=local(2025, 10, 5, 9))  # old at October 2026's end
    award(member_fact(alice, "member.micro_wish"), at=local(2026, 11, 3, 9))  # fresh
    redeem(alice, 5, local(2026, 11, 10))
    for month in months:
        run_job(JOBS_BY_ID["redeemable_expiry"], parse_period(month))
    assert sum(e.points for e in entries(EntryKind.EXPIRY)) == Decimal(-5)
    assert total_of("member", alice.id, LedgerName.REDEEMABLE, ALL_TIME).balance == Decimal(0)


@pytest.mark.parametrize("job", ["run before the reversal", "run after the reversal"])
def test_a_debit_reversed_after_the_month_its_points_expired_in_gives_back_no_expired_points(world, job):
    """The reversal undoes the debit as of the debit's credit instant: the points it had spent expired at October's
    end, whether October's run comes before the reversal (the reversal then expires them in its transaction) or
    after it (the run's netting counts the reversal in October)."""
    alice, admin = world["alice"], principal_for(world["users"]["admin"])
    award(member_fact(alice, "member.micro_wish"), at=local(2025, 10, 5, 9))  # 5, expired at October 2026's end
    redeem(alice, 5, local(2026, 10, 20))
    debit = entries(EntryKind.REDEMPTION)[0]
    if job == "run before the reversal":
        run_job(JOBS_BY_ID["redeemable_expiry"], parse_period("2026-10"))
    reverse_entry(admin, debit.id, "误兑换，退回积分", at=local(2026, 11, 3, 9))
    run_job(JOBS_BY_ID["redeemable_expiry"], parse_period("2026-10"))
    assert [e.points for e in entries(EntryKind.EXPIRY)] == [Decimal(-5)]
    assert total_of("member", alice.id, LedgerName.REDEEMABLE, ALL_TIME).balance == Decimal(0)
    assert home_summary(alice.id, now=local(2026, 11, 5))["redeemable"] == Decimal(0)
    assert compare_totals() == []


def test_expiry_never_runs_when_the_policy_keeps_points_forever(world):
    install_policy(lambda doc: doc["redeemable_expiry"].update(validity_months=None))
    award(member_fact(world["alice"], "member.micro_wish"), at=local(2020, 1, 10))
    expire_redeemable(parse_period("2026-01"), policy_in_force(local(2026, 2, 1)))
    assert entries(EntryKind.EXPIRY) == []
    assert home_summary(world["alice"].id, now=local(2026, 1, 5))["expiring"]["points"] == 0


def test_settlement_keeps_every_total_equal_to_its_ledger(world):
    give(world["alice"], times=2)
    award(member_fact(world["bob"], "member.no_show"), at=local(2026, 10, 9))
    policy = policy_in_force(local(2027, 1, 1))
    decay_standing(parse_period("2026-10"), policy)
    reset_assessment(parse_period("2026"), policy)
    db.session.commit()
    assert compare_totals() == []


SETTLEMENT_RUNS = {  # the run writing one entry of each settlement kind for alice below
    EntryKind.DECAY: ("standing_decay", "2026-10"),
    EntryKind.RESET: ("assessment_reset", "2026"),
    EntryKind.EXPIRY: ("redeemable_expiry", "2026-10"),
}


def ledger_size() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry))


@pytest.mark.parametrize("kind", list(SETTLEMENT_RUNS))
def test_an_entry_of_a_settlement_job_is_not_reversed_while_an_award_still_is(world, kind):
    """Decay, reset and expiry follow from the policy and the balances: reversed, the reversal would count as
    scoring (a reversed reset: +25 earned in the new year, on its boards and on the standing score)."""
    alice, admin = world["alice"], principal_for(world["users"]["admin"])
    [wish, _] = award(member_fact(alice, "member.micro_wish"), at=local(2025, 10, 5, 9))  # old at October 2026's end
    give(alice, times=2)  # 20 more in October 2026
    job, period = SETTLEMENT_RUNS[kind]
    run_job(JOBS_BY_ID[job], parse_period(period))
    [settled] = entries(kind)
    before, standing_before = ledger_size(), standing(alice)
    with pytest.raises(SettlementEntryNotReversible) as refused:
        reverse_entry(admin, settled.id, "结算有误", at=local(2027, 1, 15, 9))
    assert refused.value.code == "settlement_entry_not_reversible" and "积分调整" in refused.value.message
    assert ledger_size() == before and standing(alice) == standing_before
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2027").earned == Decimal(0)
    reversal = reverse_entry(admin, wish.id, "重复上报", at=local(2027, 1, 15, 9))
    assert (reversal.kind, reversal.points, reversal.reverses_id) == (EntryKind.REVERSAL, Decimal(-5), wish.id)
    assert compare_totals() == []


def test_the_expiry_a_late_refund_writes_is_not_reversed_either(world):
    alice, admin = world["alice"], principal_for(world["users"]["admin"])
    award(member_fact(alice, "member.micro_wish"), at=local(2025, 10, 5, 9))  # 5, expired at October 2026's end
    redeem(alice, 5, local(2026, 10, 20))
    run_job(JOBS_BY_ID["redeemable_expiry"], parse_period("2026-10"))
    reverse_entry(admin, entries(EntryKind.REDEMPTION)[0].id, "误兑换，退回积分", at=local(2026, 11, 3, 9))
    [expired] = entries(EntryKind.EXPIRY)  # written in the reversal's transaction, by the admin
    assert expired.source_type == SourceType.ADMIN
    before = ledger_size()
    with pytest.raises(SettlementEntryNotReversible):
        reverse_entry(admin, expired.id, "不应过期", at=local(2026, 11, 4, 9))
    assert ledger_size() == before
    assert total_of("member", alice.id, LedgerName.REDEEMABLE, ALL_TIME).balance == Decimal(0)
