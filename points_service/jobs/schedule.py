"""The job table: stable ids, cron triggers in Asia/Shanghai, and which period each job settles.

A job settles the period that ENDED at or before its scheduled fire time (the period of kind K
containing the fire time, stepped back once), so a late catch-up run still settles the right period.
Each firing also settles what the job's fire times within its ``lookback`` left missing or failed
(scheduler.due_periods).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from points_service.domain.annual.settlement import settle_year_job
from points_service.domain.boards.upkeep import audit_boards_job
from points_service.domain.checkin.consequences import settle_activity_consequences
from points_service.domain.exports.files import annual_export_job
from points_service.domain.ledger.settlement import (
    EXPIRY_JOB,
    EXPIRY_PERIOD,
    decay_standing,
    expire_redeemable,
    reset_assessment,
)
from points_service.domain.lifecycle.due import apply_due_changes
from points_service.domain.market.orders import expire_uncollected
from points_service.domain.notifications.delivery import deliver_job
from points_service.domain.notifications.reminders import activity_reminder_job, expiry_reminder_job
from points_service.domain.periods import Period, PeriodKind, period_containing
from points_service.domain.policy import Policy
from points_service.domain.red_flags.awards import award_red_flags_job
from points_service.domain.stars.runs import propose_quarter_stars
from points_service.jobs.retention import retention_job


@dataclass(frozen=True)
class JobSpec:
    id: str
    description: str
    cron: dict  # CronTrigger fields, interpreted in Asia/Shanghai
    settles: Callable[[Policy], str | None]  # the period kind it settles under this policy; None = off
    run: Callable[[Period, Policy], dict]
    claimed: bool = True  # False: no period claim; the job is idempotent by itself and runs every firing
    # A period whose scheduled fire time lies within the lookback is run on every firing until its claim
    # succeeds (scheduler.due_periods): 100 days covers the three monthly firings before this one (a failed
    # month is retried on the next three 1sts), a week the daily jobs' last seven days; older days are not
    # worth a late deduction, nor an older week's board audit a second one.
    lookback: timedelta = timedelta(days=100)
    # True for the jobs that take a balance down (decay, reset, expiry): the scheduler settles their periods
    # oldest first, and a failed one holds the later ones back (until it leaves the lookback). Decay and reset
    # compute each period's amount from the balance after the previous period's entries: a later period run
    # first would take the same points twice.
    in_order: bool = False
    # For an in_order job, True when its periods give the same result settled in any order (expiry: each run nets
    # the old credits against every expiry entry whatever its date, docs/ledger.md): ``flask jobs run-once`` may
    # then settle a period older than one already settled. False (decay compounds on the balance, the reset
    # zeroes it): run-once refuses such a period, as the scheduler never runs it.
    any_order: bool = False

    def period_for(self, fire_time: datetime, policy: Policy) -> Period | None:
        kind = self.settles(policy)
        if kind is None:
            return None
        return period_containing(fire_time, PeriodKind(kind)).previous()


def _decay_kind(policy: Policy) -> str | None:
    return None if policy.standing.kind == "none" else policy.standing.period


def _reset_kind(policy: Policy) -> str | None:
    return None if policy.assessment_reset.every == "none" else policy.assessment_reset.every


def _expiry_kind(policy: Policy) -> str | None:
    return None if policy.redeemable_expiry.validity_months is None else EXPIRY_PERIOD


WEEK = timedelta(days=7)

JOBS: tuple[JobSpec, ...] = (
    JobSpec("standing_decay", "活跃指数衰减", {"day": 1, "hour": 0, "minute": 10}, _decay_kind, decay_standing,
            in_order=True),
    JobSpec("assessment_reset", "考核积分定期清零", {"day": 1, "hour": 0, "minute": 20}, _reset_kind, reset_assessment,
            in_order=True),
    JobSpec(EXPIRY_JOB, "公益积分过期", {"day": 1, "hour": 0, "minute": 30}, _expiry_kind, expire_redeemable,
            in_order=True, any_order=True),
    JobSpec("activity_consequences", "活动缺席与未签退扣分（前一天结束的活动）", {"hour": 1, "minute": 0},
            lambda _policy: PeriodKind.DAY, settle_activity_consequences, lookback=WEEK),
    # Yearly, but fired monthly: January 1st settles, later firings find the claim; a failed export (year not
    # settled yet) is retried on the next 1st.
    JobSpec("annual_settlement", "年度结算（上一年度）", {"day": 1, "hour": 3, "minute": 0},
            lambda _policy: PeriodKind.YEAR, settle_year_job),
    JobSpec("annual_export", "年度积分导出文件（instance/exports，结算之后）", {"day": 1, "hour": 4, "minute": 0},
            lambda _policy: PeriodKind.YEAR, annual_export_job),
    # Fired monthly like the others; the claim per quarter (or per the red flag's period) makes the work
    # happen once, on the first firing after the period ends.
    JobSpec("star_propose", "业务之星季度评选（生成待发布的评选）", {"day": 1, "hour": 2, "minute": 0},
            lambda _policy: PeriodKind.QUARTER, propose_quarter_stars),
    JobSpec("red_flag_award", "流动红旗评选", {"day": 1, "hour": 2, "minute": 30},
            lambda policy: policy.red_flag.period, award_red_flags_job),
    # Weekly (Sunday night): at city scale the comparison stages 12M rows, ~15 min of one core.
    JobSpec("boards_audit", "排行榜核对（与积分汇总重建比较，清理零计数行）",
            {"day_of_week": "sun", "hour": 4, "minute": 30}, lambda _policy: PeriodKind.DAY, audit_boards_job,
            lookback=WEEK),
    # Daily: orders whose pick-up window ended by the end of the settled day are cancelled and refunded.
    JobSpec("market_order_expiry", "积分超市逾期未取货订单自动取消并退还积分", {"hour": 1, "minute": 30},
            lambda _policy: PeriodKind.DAY, expire_uncollected, lookback=WEEK),
    # Notifications: unclaimed (each run does what is due; the outbox and inbox keys make reruns harmless).
    JobSpec("notification_delivery", "微信订阅消息发送（发件箱，失败退避重试）", {"minute": "*"},
            lambda _policy: PeriodKind.DAY, deliver_job, claimed=False),
    JobSpec("activity_reminder", "活动开始前提醒已报名党员", {"minute": 5},
            lambda _policy: PeriodKind.DAY, activity_reminder_job, claimed=False),
    JobSpec("expiry_reminder", "公益积分即将到期提醒（每人每月一次）", {"hour": 9, "minute": 0},
            lambda _policy: PeriodKind.DAY, expiry_reminder_job, claimed=False),
    # Daily, just after local midnight: deactivations and transfers scheduled for the day that has just begun.
    JobSpec("member_changes", "预约生效的党员停用与转接（当天生效的）", {"hour": 0, "minute": 5},
            lambda _policy: PeriodKind.DAY, apply_due_changes, lookback=WEEK),
    # Daily, in the night's quiet hour: completed Idempotency-Keys and ended WeChat deliveries past their
    # retention are deleted in committed batches; the result counts both (jobs/retention.py).
    JobSpec("retention", "过期数据清理（已完成的幂等键、已结束的微信发送记录）", {"hour": 5, "minute": 0},
            lambda _policy: PeriodKind.DAY, retention_job, lookback=WEEK),
)

JOBS_BY_ID = {job.id: job for job in JOBS}
