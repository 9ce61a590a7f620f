"""Decay, reset and expiry: balances going down by policy, each as ledger entries a member can read.

Each runs for one closed period and is keyed by (subject, ledger, period), so a re-run writes nothing
new. Balances are taken AT THE CUTOFF (the period's end), not at run time: entries credited after the
cutoff are subtracted from the maintained total, so a late catch-up run computes the same amounts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from points_service.db import cents, db, from_cents, sql_constant
from points_service.domain.ledger.credit import insert_entry
from points_service.domain.periods import Period, PeriodKind, local_midnight, period_containing
from points_service.domain.policy import Policy, policy_in_force
from points_service.domain.policy.rules import decay_amount
from points_service.models import (
    ALL_TIME,
    SCORING_KINDS,
    EntryKind,
    JobRun,
    JobRunStatus,
    LedgerEntry,
    LedgerName,
    PointTotal,
    SourceType,
)

ZERO = Decimal(0)
Subject = tuple[str, int]
EXPIRY_PERIOD = PeriodKind.MONTH  # redeemable points expire at the end of a month (the job's period)
EXPIRY_JOB = "redeemable_expiry"  # the job that writes it (jobs/schedule.py)


def _balances(ledger: LedgerName) -> dict[Subject, Decimal]:
    rows = db.session.execute(sa.select(
        PointTotal.subject_type, PointTotal.subject_id,
        cents(PointTotal.earned) + cents(PointTotal.deducted) + cents(PointTotal.settled),
    ).where(PointTotal.ledger == ledger, PointTotal.period == ALL_TIME))
    return {(str(t), i): from_cents(c) for t, i, c in rows}


def _credited_since(cutoff, condition) -> dict[Subject, Decimal]:
    rows = db.session.execute(sa.select(
        LedgerEntry.subject_type, LedgerEntry.subject_id, sa.func.sum(cents(LedgerEntry.points)),
    ).where(LedgerEntry.credited_at >= cutoff, condition).group_by(LedgerEntry.subject_type, LedgerEntry.subject_id))
    return {(str(t), i): from_cents(c) for t, i, c in rows}


def balances_at(ledger: LedgerName, cutoff) -> dict[Subject, Decimal]:
    """Every subject's balance of ``ledger`` just before ``cutoff`` (totals less later entries)."""
    if ledger == LedgerName.STANDING:
        later = sa.or_(
            sa.and_(LedgerEntry.ledger == LedgerName.ASSESSMENT, LedgerEntry.kind.in_(SCORING_KINDS)),
            LedgerEntry.ledger == LedgerName.STANDING,
        )
    else:
        later = LedgerEntry.ledger == ledger
    balances = _balances(ledger)
    for subject, amount in _credited_since(cutoff, later).items():
        balances[subject] = balances.get(subject, ZERO) - amount
    return balances


def settlement_key(kind: EntryKind, subject: Subject, ledger: LedgerName, period: Period) -> str:
    """The idempotency key of a job's entry: one per (kind, subject, ledger, period)."""
    subject_type, subject_id = subject
    return f"{kind}:{subject_type}:{subject_id}:{ledger}:{period.key}"


def _write(subject: Subject, ledger: LedgerName, kind: EntryKind, item_code: str, points: Decimal,
           period: Period, job_id: str, policy: Policy, reason: str) -> int:
    """Write one settlement entry; 1 if written now, 0 if this period already had it."""
    subject_type, subject_id = subject
    entry = LedgerEntry(
        subject_type=subject_type, subject_id=subject_id, ledger=ledger, kind=kind, item_code=item_code,
        points=points, points_requested=points, occurred_at=period.end, credited_at=period.end,
        policy_version=policy.version, source_type=SourceType.JOB, source_id=f"{job_id}:{period.key}",
        reason=reason, idempotency_key=settlement_key(kind, subject, ledger, period),
    )
    return int(insert_entry(entry) is entry)


def decay_standing(period: Period, policy: Policy, job_id: str = "standing_decay") -> dict:
    rule = policy.standing
    days = (period.end_date - period.start_date).days
    written = 0
    for subject, balance in sorted(balances_at(LedgerName.STANDING, period.end).items()):
        amount = decay_amount(balance, rule, days)
        if amount > 0:
            written += _write(subject, LedgerName.STANDING, EntryKind.DECAY, "standing.decay", -amount, period,
                              job_id, policy, f"活跃指数衰减（{period.key}）")
    return {"entries": written}


def reset_assessment(period: Period, policy: Policy, job_id: str = "assessment_reset") -> dict:
    written = 0
    for subject, balance in sorted(balances_at(LedgerName.ASSESSMENT, period.end).items()):
        if balance != 0:
            written += _write(subject, LedgerName.ASSESSMENT, EntryKind.RESET, "assessment.reset", -balance,
                              period, job_id, policy, f"考核积分清零（{period.key}）")
    return {"entries": written}


def _expiring(period: Period, months: int, *subject_filter) -> dict[Subject, Decimal]:
    """Oldest first: what was credited before the validity threshold and not yet spent by the cutoff."""
    credits, spent = _expiry_filters(*expiry_window(period, months))
    old_credits, debits = _sums(*credits, *subject_filter), _sums(*spent, *subject_filter)
    amounts = {subject: credited + debits.get(subject, ZERO) for subject, credited in old_credits.items()}
    return {subject: amount for subject, amount in amounts.items() if amount > 0}  # debits are negative


def expiring_by_subject(period: Period, months: int) -> dict[Subject, Decimal]:
    """What the expiry run at the end of ``period`` will take from each subject (the reminder job reads it)."""
    return _expiring(period, months)


def expiry_window(period: Period, months: int) -> tuple[datetime, datetime]:
    """(validity threshold, cutoff) of the expiry run at the end of ``period``."""
    return _months_before(period, months), period.end


def _expiry_filters(threshold, cutoff) -> tuple[list, list]:
    """Redeemable credits older than the threshold, and the debits netted against them (values or parameters).

    A reversal counts with the debits whatever its sign: reversing a debit (a refunded redemption) undoes
    the debit, so the points it had spent are unspent again and keep their original expiry, rather than
    coming back as a fresh credit. It counts as of the reversed debit's credit instant, as the debit did: an
    order placed before a month's end and refunded after it (cancelled, or past its pick-up window) would
    otherwise leave that month's netting with the debit alone, and the points it spent would not expire then.

    Expiry entries (and their reversals) count whatever their date, other debits only before the cutoff. An
    expiry entry is dated at its own period's end, so a month settled after a later one (by an operator's
    ``flask jobs run-once``: the scheduler never runs a month older than one settled) would otherwise not see
    the later month's entry and expire the same old credits again. Counted always, each run takes what its own netting
    finds beyond everything expired so far, so whatever the order the months are settled in, the expired total
    is the largest of their nettings: what settling them in order gives. (Refusing the earlier month instead
    would lose its expiry whenever its netting is the larger one: old credits then spent in the later month.)"""
    zero, reversal, expiry = sql_constant(0), sql_constant(EntryKind.REVERSAL), sql_constant(EntryKind.EXPIRY)
    expired = sa.or_(LedgerEntry.kind == expiry, LedgerEntry.reverses_kind == expiry)
    debit = sa.or_(cents(LedgerEntry.points) < zero, LedgerEntry.kind == reversal)
    undoes_debit = sa.and_(LedgerEntry.kind == reversal, cents(LedgerEntry.points) > zero)
    counted_at = sa.case((undoes_debit, _reversed_credited_at()), else_=LedgerEntry.credited_at)
    return ([cents(LedgerEntry.points) > zero, LedgerEntry.kind != reversal, LedgerEntry.credited_at < threshold],
            [sa.or_(expired, sa.and_(debit, counted_at < cutoff))])


def _reversed_credited_at() -> sa.ScalarSelect:
    """The credit instant of the entry the (outer) reversal reverses: a primary-key lookup, for reversals only."""
    reversed_entry = aliased(LedgerEntry)
    return (sa.select(reversed_entry.credited_at).where(reversed_entry.id == LedgerEntry.reverses_id)
            .correlate(LedgerEntry).scalar_subquery())


def expiring_sums_sql(subject_type, subject_id, threshold: str = "threshold",
                      cutoff: str = "cutoff") -> tuple[sa.ScalarSelect, sa.ScalarSelect]:
    """For one subject, the old credits and the debits (hundredths) the expiry nets, as scalar subqueries with
    bind parameters named ``threshold`` and ``cutoff`` (``expiry_window``): the home screen reads them with its
    totals. ``expiring_amount`` of the two is what ``_expiring`` would give."""
    credits, spent = _expiry_filters(sa.bindparam(threshold), sa.bindparam(cutoff))

    def total(filters) -> sa.ScalarSelect:
        return sa.select(sa.func.coalesce(sa.func.sum(cents(LedgerEntry.points)), sql_constant(0))).where(
            LedgerEntry.ledger == sql_constant(LedgerName.REDEEMABLE), LedgerEntry.subject_type == subject_type,
            LedgerEntry.subject_id == subject_id, *filters).scalar_subquery()
    return total(credits), total(spent)


def unsettled_expiry_sql(subject_type, subject_id) -> sa.ColumnElement:
    """What expired at the end of the last expiry period but the job has not written yet (hundredths; binds
    ``unsettled_threshold``, ``unsettled_cutoff`` and ``expiry_key`` of ``unsettled_expiry_params``). Points
    expire at the cutoff, whenever the job runs (day 1, 00:30, or later after downtime): what may be spent
    meanwhile is the balance less this. The job nets every debit before the cutoff and every expiry entry against
    the old credits, so the last period's amount covers any period whose run was missed."""
    old_credits, debits = expiring_sums_sql(subject_type, subject_id, "unsettled_threshold", "unsettled_cutoff")
    # The job's run having succeeded answers for every subject (most have nothing to expire, so no entry of
    # theirs says so) before any sum is read; the entry's key answers for a run of the job's function alone.
    settled = sa.exists().where(JobRun.job_id == sql_constant(EXPIRY_JOB),
                                JobRun.period == sa.bindparam("expiry_period"),
                                JobRun.status == sql_constant(JobRunStatus.SUCCEEDED))
    written = sa.exists().where(LedgerEntry.idempotency_key == sa.bindparam("expiry_key"))
    net, zero = old_credits + debits, sql_constant(0)
    return sa.case((settled, zero), (written, zero), (net > zero, net), else_=zero)


def unsettled_expiry_params(subject: Subject, at: datetime) -> dict | None:
    """The parameters of ``unsettled_expiry_sql`` at ``at``; None when last month's run expires nothing."""
    instants = last_expiry_instants(at)
    months = last_expiry_validity(*(policy_in_force(instant) for instant in instants))
    return None if months is None else unsettled_params_under(subject, at, months)


def last_expiry_instants(at: datetime) -> tuple[datetime, datetime]:
    """The two instants whose policies decide last month's expiry run (``last_expiry_validity``): the month's
    last instant and the next month's start."""
    period = period_containing(at, EXPIRY_PERIOD).previous()
    return period.last_instant, period.end


def last_expiry_validity(at_last_instant: Policy, at_end: Policy) -> int | None:
    """The validity (months) last month's expiry run applies, None when it expires nothing. As the job decides:
    it runs when the policy in force as the month ends has an expiry (the scheduler asks at 00:30; a version
    taking effect in between is not seen here), with the validity of the month's own policy."""
    if at_end.redeemable_expiry.validity_months is None:
        return None
    return at_last_instant.redeemable_expiry.validity_months


def unsettled_params_under(subject: Subject, at: datetime, months: int) -> dict:
    """``unsettled_expiry_params`` for last month's run with a validity of ``months``."""
    period = period_containing(at, EXPIRY_PERIOD).previous()
    threshold, cutoff = expiry_window(period, months)
    return {"unsettled_threshold": threshold, "unsettled_cutoff": cutoff, "expiry_period": period.key,
            "expiry_key": settlement_key(EntryKind.EXPIRY, subject, LedgerName.REDEEMABLE, period)}


def expiring_amount(old_credits: int, debits: int) -> Decimal:
    return max(from_cents(old_credits + debits), ZERO)


def expire_redeemable(period: Period, policy: Policy, job_id: str = EXPIRY_JOB) -> dict:
    """Oldest first: what was credited before the validity threshold and not yet spent expires."""
    months = policy.redeemable_expiry.validity_months
    if months is None:
        return {"entries": 0}
    written = 0
    for subject, amount in sorted(_expiring(period, months).items()):
        if amount > 0:
            written += _write(subject, LedgerName.REDEEMABLE, EntryKind.EXPIRY, "redeemable.expiry", -amount,
                              period, job_id, policy, f"公益积分过期（{months} 个月有效期，{period.key}）")
    return {"entries": written}


def expire_refunded(reversal: LedgerEntry, debited_at: datetime) -> LedgerEntry | None:
    """Flush-level, in the refund's transaction: when a reversal of a redeemable debit (credited at
    ``debited_at``) comes after the end of a month whose expiry the points it brings back fell under, those
    points expired at that month's end (they keep their original expiry), so they expire again at once rather
    than stay spendable until the next run. Whether that month's run has happened or not: the netting counts
    this entry, like any expiry entry, so the run then takes only the rest."""
    if reversal.ledger != LedgerName.REDEEMABLE or reversal.points <= 0:
        return None
    subject = (str(reversal.subject_type), reversal.subject_id)
    amount, period, policy = ZERO, None, None
    for month, months, month_policy in _months_ended(debited_at, reversal.credited_at):
        expiring = _expiring(month, months, LedgerEntry.subject_type == subject[0],
                             LedgerEntry.subject_id == subject[1]).get(subject, ZERO)
        if expiring > amount:
            amount, period, policy = expiring, month, month_policy
    if period is None:
        return None
    return insert_entry(LedgerEntry(
        subject_type=reversal.subject_type, subject_id=reversal.subject_id, ledger=LedgerName.REDEEMABLE,
        kind=EntryKind.EXPIRY, item_code="redeemable.expiry", points=-amount, points_requested=-amount,
        occurred_at=period.end, credited_at=reversal.credited_at, policy_version=policy.version,
        source_type=reversal.source_type, source_id=reversal.source_id, actor_id=reversal.actor_id,
        reason=f"退还的公益积分已于 {period.key} 月末过期", idempotency_key=f"expiry:reversal:{reversal.id}"))


def _months_ended(after: datetime, until: datetime):
    """(month, validity, its policy) of each expiry month ending in (after, until] whose run expires anything."""
    month = period_containing(after, EXPIRY_PERIOD)
    while month.end <= until:
        policy = policy_in_force(month.last_instant)
        months = last_expiry_validity(policy, policy_in_force(month.end))
        if months is not None:
            yield month, months, policy
        month = month.next()


def _months_before(period: Period, months: int):
    end = period.end_date
    index = end.year * 12 + end.month - 1 - months
    return local_midnight(end.replace(year=index // 12, month=index % 12 + 1, day=1))


def _sums(*conditions) -> dict[Subject, Decimal]:
    rows = db.session.execute(sa.select(
        LedgerEntry.subject_type, LedgerEntry.subject_id, sa.func.sum(cents(LedgerEntry.points)),
    ).where(LedgerEntry.ledger == LedgerName.REDEEMABLE, *conditions)
     .group_by(LedgerEntry.subject_type, LedgerEntry.subject_id))
    sums: dict[Subject, Decimal] = defaultdict(lambda: ZERO)
    for subject_type, subject_id, total in rows:
        sums[(str(subject_type), subject_id)] = from_cents(total)
    return sums
