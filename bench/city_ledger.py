"""The ledger history of the bench city (bench/city_gen.py), simulated month by month in time order.

Every entry is one the service itself would have written: the credit path's idempotency keys, caps
(item windows and the monthly positive cap), one entry per ledger the item feeds, deductions from
check-ins and the consequences job, admin reversals and adjustments, and the settlement jobs at the
policy's cadence with the amounts their pure rules give (monthly standing decay, monthly redeemable
expiry, yearly assessment reset). Amounts are integer hundredths throughout, as stored.

Month-major order (all subjects for month 1, then month 2, ...) keeps ids ascending with
``credited_at`` as in production, so the table's physical order is the real one (time), which
matters to any benchmark that scans a period. Subjects only depend on their own entries, so one
pass in time order per subject is exact; ``Sink`` receives the rows of every table.
"""

from __future__ import annotations

import calendar
import heapq
import itertools
import math
import random
from bisect import bisect_left
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

LOCAL_OFFSET = 8 * 3600  # Asia/Shanghai has no DST since 1991: local = UTC + 8 h for the whole span
DAY = 86400
FIRST_YEAR, MONTHS = 2024, 35  # 2024-01 .. 2026-11
END = calendar.timegm((2026, 11, 22, 0, 0, 0)) - LOCAL_OFFSET  # exclusive: through 2026-11-21 local
TITLES = ("固定服务日", "环境整治", "敬老助老", "文明劝导", "政策宣讲", "义诊服务", "垃圾分类宣传", "关爱儿童")
MEMBER_FACTS = (  # (what, weight): the mix of a member's monthly facts
    ("activity", 50), ("no_show", 2.5), ("member.self_service_hour", 12), ("member.micro_wish", 5),
    ("member.pairing_visit", 5), ("member.grid_problem", 10), ("member.suggestion_adopted", 3),
    ("member.commend_community", 2), ("member.commend_district", 0.5), ("member.commend_city", 0.1),
    ("member.falsified", 0.1), ("adjustment", 0.2),
)
ORG_FACTS = (("org.cobuild_activity", 0.9), ("org.problem_solved", 0.08), ("org.resources_invested", 0.08),
             ("org.project_done", 0.05), ("org.suggestion_adopted", 0.05), ("org.meeting_absence", 0.03))
REVERSED_SHARE = {"award": 0.003, "deduction": 0.05}  # admins reverse some awards and upheld appeals
# Entry row layout (lists, so that a reversal can point at a row before ids are assigned).
ID, STYPE, SID, LEDGER, KIND, ITEM, UNITS, POINTS, ASKED, CAPPED, OCCURRED, CREDITED = range(12)
POLICY, SRC_TYPE, SRC_ID, ACTOR, REASON, KEY, REVERSES, REVERSES_KIND = range(12, 20)


def _month_start(index: int) -> int:
    year, month = divmod(index, 12)
    return calendar.timegm((FIRST_YEAR + year, month + 1, 1, 0, 0, 0)) - LOCAL_OFFSET


MONTH_STARTS = [_month_start(m) for m in range(MONTHS + 2)]


def month_start(index: int) -> int:
    return MONTH_STARTS[index]


def month_key(index: int) -> str:
    year, month = divmod(index, 12)
    return f"{FIRST_YEAR + year}-{month + 1:02d}"


@dataclass(frozen=True)
class Item:
    code: str
    points: int  # hundredths per unit
    ledgers: tuple[str, ...]
    caps: tuple[tuple[str, int], ...]  # (window, hundredths) in CAP_WINDOWS order


class Rules:
    """The policy in force (version 1 from config/policy.yaml) reduced to what the simulation needs."""

    def __init__(self, policy, cap_windows, month_positive: str, half: Decimal):
        self.version, self.month_positive = policy.version, month_positive
        self.items = {code: Item(code, _cents(i.points), tuple(sorted(i.ledgers)),
                                 tuple((w, _cents(getattr(i.caps, w))) for w in cap_windows
                                       if getattr(i.caps, w) is not None))
                      for code, i in policy.items.items()}
        self.monthly_cap = {k: None if v is None else _cents(v) for k, v in policy.monthly_positive_cap.items()}
        self.events = dict(policy.events)
        decay, reset, expiry = policy.standing, policy.assessment_reset, policy.redeemable_expiry
        if (decay.kind, decay.period, reset.every) != ("exponential", "month", "year") or not expiry.validity_months:
            raise SystemExit("city_gen simulates monthly exponential decay, yearly reset and expiry only")
        self.decay_floor, self.expiry_months = _cents(decay.floor), expiry.validity_months
        self.decay_factor = {d: 1 - half ** (Decimal(d) / decay.half_life_days) for d in (28, 29, 30, 31)}

    def decay(self, balance: int, days: int) -> int:
        """rules.decay_amount in hundredths (same Decimal arithmetic; checked against it by city_gen)."""
        room = balance - self.decay_floor
        if room <= 0:
            return 0
        amount = int((Decimal(room) * self.decay_factor[days]).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        return min(max(amount, 0), room)


def _cents(value) -> int:
    return int(Decimal(value) * 100)


class Subject:
    __slots__ = ("stype", "sid", "community", "grid", "branch", "user_id", "activity", "joined", "asmt", "stand",
                 "red_neg", "red_old", "red_pos", "used", "pos_month", "pending", "reported", "report_month",
                 "cobuilds", "admin")

    def __init__(self, stype, sid, community, grid, branch, user_id, activity, joined, admin):
        self.stype, self.sid, self.community, self.grid, self.branch = stype, sid, community, grid, branch
        self.user_id, self.activity, self.joined, self.admin = user_id, activity, joined, admin
        self.asmt = self.stand = self.red_neg = self.red_old = self.pos_month = self.cobuilds = 0
        self.red_pos, self.used, self.pending, self.reported, self.report_month = None, {}, None, False, -1


class Sink:
    """Receives rows per table; city_gen streams them into COPY, the pilot only counts."""

    def __init__(self):
        self.counts: dict[str, int] = {}

    def rows(self, table: str, rows) -> None:
        self.counts[table] = self.counts.get(table, 0) + len(rows)


class History:
    def __init__(self, rules: Rules, subjects: list[Subject], communities: dict[int, tuple], sink: Sink,
                 rng: random.Random, rate: float, admin_user: int, jobs_since: int = 0):
        self.rules, self.subjects, self.communities, self.sink, self.rng = rules, subjects, communities, sink, rng
        self.rate, self.admin_user, self.jobs_since = rate, admin_user, jobs_since
        self.member_kinds = [k for k, _ in MEMBER_FACTS]
        self.member_weights = _cumulative(w for _, w in MEMBER_FACTS)
        self.next_id = {"ledger": 1, "activities": 1, "checkins": 1, "records": 1, "reports": 1}
        self.kinds: dict[str, int] = {}
        self.seq, self.heap, self.seen_by, self.seen = itertools.count(), [], None, set()

    # -- the month loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        for m in range(MONTHS):
            self.month(m)

    def month(self, m: int) -> None:
        self.m, self.start, self.end = m, month_start(m), min(month_start(m + 1), END)
        self.rows: list[list] = []
        self.seen_by = None
        self.activities = self.plan_activities()
        for subject in self.subjects:
            if subject.joined <= m:
                self.subject_month(subject)
        if month_start(m + 1) <= END and m >= self.jobs_since:  # the month closed: the settlement jobs run
            for subject in self.subjects:
                if subject.joined <= m:
                    self.settle(subject)
        self.flush()

    def subject_month(self, s: Subject) -> None:
        """The subject's events of this month in time order; later ones (a job at 01:00 next day, a
        reversal weeks later) wait in ``pending``, so month-end balances see exactly what came before."""
        s.pos_month = 0
        if self.m % 12 == 0 and s.used:
            s.used = {}  # every cap window (day .. year) lies inside one year
        events, pending = self.new_events(s), s.pending
        if not events and not pending:
            return
        self.heap, s.pending = [], None
        for t, fn, *args in events:
            self.schedule(s, t, fn, *args)
        for event in pending or ():
            self.schedule(s, *event)
        while self.heap:
            t, _seq, fn, args = heapq.heappop(self.heap)
            fn(s, t, *args)

    def schedule(self, s: Subject, t: int, fn, *args) -> None:
        if t < self.end:
            heapq.heappush(self.heap, (t, next(self.seq), fn, args))
        elif t < END:
            s.pending = (s.pending or []) + [(t, fn, *args)]

    def new_events(self, s: Subject) -> list[tuple]:
        events = self.report_events(s)
        if s.stype == "organization":
            return events + self.org_events(s)
        for _ in range(_poisson(self.rng, self.rate * s.activity)):
            what = self.member_kinds[bisect_left(self.member_weights, self.rng.random() * self.member_weights[-1])]
            if what == "activity" or what == "no_show":
                events += self.activity_events(s, what)
            elif what == "adjustment":
                t = self.moment()
                events.append((t, self.adjust, self.rng.choice((100, 200, 300, -100, -200))))
            else:
                events.append(self.record_event(s, what))
        return events

    def moment(self, earliest: int | None = None) -> int:
        low = max(self.start, earliest or self.start)
        return low + int(self.rng.random() * (max(low + 1, self.end) - low))

    # -- activities and check-ins -----------------------------------------------------------------------

    def plan_activities(self) -> dict[int, list[tuple]]:
        plans, rng, last_day = {}, self.rng, (self.end - self.start) // DAY - 1
        rows = []
        for community_id, (lat, lng, admin_user) in self.communities.items():
            plans[community_id] = []
            for _ in range(6):
                # self.start is a local midnight, so this is 09:00, 14:00 or 19:00 local on a day of the month
                starts = self.start + _randint(rng, 0, max(0, last_day - 1)) * DAY + rng.choice((9, 14, 19)) * 3600
                ends = starts + rng.choice((2, 2, 3)) * 3600
                if ends + DAY > END:
                    continue
                activity_id = self._next("activities")
                plans[community_id].append((activity_id, starts, ends))
                rows.append((activity_id, community_id, rng.choice(TITLES), "member.activity_hour", starts, ends,
                             lat, lng, 200, None, "published", None, "organization", admin_user, starts - 7 * DAY,
                             f"{rng.getrandbits(256):064x}"))
        self.sink.rows("activities", rows)
        return plans

    def activity_events(self, s: Subject, what: str) -> list[tuple]:
        plan = self.activities.get(s.community)
        if not plan:
            return []
        activity_id, starts, ends = self.rng.choice(plan)
        if self.seen_by is not s:
            self.seen_by, self.seen = s, set()
        if activity_id in self.seen:  # one check-in (or no-show) per member and activity this month
            return []
        self.seen.add(activity_id)
        rng, job_time = self.rng, _next_local_day(ends) + 3600  # the consequences job runs at 01:00
        if what == "no_show":
            return [(job_time, self.credit, self.rules.events["no_show"], 100, "job",
                     f"noshow:{activity_id}:{s.sid}", ends, None)]
        checkin_id, late = self._next("checkins"), rng.random() < 0.05
        checked_in = starts + (_randint(rng, 11, 40) if late else -_randint(rng, 0, 25)) * 60
        events = [(checked_in, self.credit, self.rules.events["late"], 100, "checkin", str(checkin_id), checked_in,
                   None)] if late else []
        if rng.random() < 0.03:
            self.sink.rows("checkins", [(checkin_id, activity_id, s.sid, "no_checkout", checked_in,
                                         _randint(rng, 5, 90), None, None, None, "")])
            return events + [(job_time, self.credit, self.rules.events["no_checkout"], 100, "job",
                              f"nocheckout:{activity_id}:{s.sid}", ends, None)]
        out = ends + _randint(rng, 0, 15) * 60
        hours = max(100, min(400, (out - checked_in) // 1800 * 50))
        self.sink.rows("checkins", [(checkin_id, activity_id, s.sid, "checked_out", checked_in,
                                     _randint(rng, 5, 90), out, _randint(rng, 5, 90), hours, "")])
        return events + [(out, self.credit, "member.activity_hour", hours, "checkin", str(checkin_id), out, None)]

    # -- records and reports ----------------------------------------------------------------------------

    def record_event(self, s: Subject, item_code: str, t: int | None = None) -> tuple:
        rng = self.rng
        decided = t or self.moment()
        occurred = decided - _randint(rng, 1, 10) * DAY
        submitted = occurred + _randint(rng, 3600, 2 * DAY)
        units = rng.choice((100, 150, 200, 300, 400)) if item_code.endswith("_hour") else 100
        route = ("branch_secretary", s.branch) if item_code == "member.self_service_hour" else \
            ("community_admin", s.community)
        record_id = self._next("records")
        submitter = s.user_id or self.admin_user
        self.sink.rows("records", [(record_id, s.stype, s.sid, item_code, occurred, units, "服务记录", "[]",
                                    "approved", route[0], route[1], submitter, submitted, s.admin, decided, "")])
        return (decided, self.credit, item_code, units, "record", str(record_id), occurred, s.admin)

    def report_events(self, s: Subject) -> list[tuple]:
        m, rng = self.m, self.rng
        if m % 6 == 0 or m == s.joined:
            chance = 0.8 if s.reported else 0.95
            left = 6 - m % 6
            s.report_month = m + min(int(rng.expovariate(1.2)), left - 1) if rng.random() < chance else -1
        if m != s.report_month:
            return []
        half_start = month_start(m - m % 6)
        decided = self.moment()
        submitted = decided - _randint(rng, 0, min(7 * DAY, decided - max(half_start, self.start)))
        half = f"{FIRST_YEAR + m // 12}-H{m % 12 // 6 + 1}"
        report_id = self._next("reports")
        self.sink.rows("reports", [(report_id, s.stype, s.sid, s.community, half, "confirmed", "[]", "[]", "[]",
                                    s.grid, s.user_id, submitted, s.admin, decided, "")])
        event = "org_report" if s.stype == "organization" else "member_rereport" if s.reported else "member_report"
        s.reported = True
        return [(decided, self.credit, self.rules.events[event], 100, "report", str(report_id), submitted, s.admin)]

    def org_events(self, s: Subject) -> list[tuple]:
        events = []
        for item_code, mean in ORG_FACTS:
            for _ in range(_poisson(self.rng, mean * s.activity)):
                events.append(self.record_event(s, item_code))
                s.cobuilds += item_code == "org.cobuild_activity"
        if self.m % 3 == 2 and month_start(self.m + 1) <= END:  # the quarter closes
            if not s.cobuilds:
                quarter = f"{FIRST_YEAR + self.m // 12}-Q{self.m % 12 // 3 + 1}"
                events.append((self.end - 1, self.credit, self.rules.events["org_empty_quarter"], 100, "job",
                               f"empty_quarter:{s.sid}:{quarter}", self.end - 1, None))
            s.cobuilds = 0
        if self.m % 12 == 11 and self.rng.random() < 0.6:
            events.append(self.record_event(s, "org.full_attendance", self.end - DAY))
        return events

    # -- writing entries --------------------------------------------------------------------------------

    def credit(self, s: Subject, t: int, item_code: str, units: int, src_type: str, src_id: str, occurred: int,
               actor: int | None) -> None:
        item = self.rules.items[item_code]
        asked = item.points * units // 100
        granted, capped_by = self.capped(s, item, asked, t) if asked > 0 else (asked, None)
        kind = "award" if asked >= 0 else "deduction"
        for ledger in item.ledgers:
            row = [0, s.stype, s.sid, ledger, kind, item_code, units, granted, asked, capped_by, occurred, t,
                   self.rules.version, src_type, src_id, actor, "", f"{src_type}:{src_id}:{item_code}:{ledger}",
                   None, None]
            self.book(s, row)
            if self.rng.random() < REVERSED_SHARE[kind] and (ledger == "assessment" or self.rng.random() < 0.5):
                self.schedule(s, t + _randint(self.rng, DAY, 20 * DAY), self.reverse, row)

    def capped(self, s: Subject, item: Item, asked: int, t: int) -> tuple[int, str | None]:
        granted, capped_by = asked, None
        limits = [(f"item.{w}", cap, s.used.get((item.code, w, self.window(w, t)), 0)) for w, cap in item.caps]
        monthly = self.rules.monthly_cap.get(s.stype)
        if monthly is not None:
            limits.append((self.rules.month_positive, monthly, s.pos_month))
        for name, limit, spent in limits:
            remaining = max(0, limit - spent)
            if remaining < granted:
                granted, capped_by = remaining, name
        return granted, capped_by

    def window(self, name: str, t: int) -> int:
        if name == "day":
            return (t + LOCAL_OFFSET) // DAY
        return self.m if name == "month" else self.m // 3 if name == "quarter" else self.m // 12

    def reverse(self, s: Subject, t: int, target: list) -> None:
        points = -target[POINTS]
        self.book(s, [0, s.stype, s.sid, target[LEDGER], "reversal", target[ITEM], 100, points, points, None,
                      target[OCCURRED], t, target[POLICY], "admin", None, self.admin_user, "核实有误，冲正", None,
                      target, target[KIND]])

    def adjust(self, s: Subject, t: int, points: int) -> None:
        key = f"bench-{s.stype}-{s.sid}-{t}"
        self.book(s, [0, s.stype, s.sid, "assessment", "adjustment", "admin.adjustment", 100, points, points, None,
                      t, t, self.rules.version, "admin", key, self.admin_user, "补录更正",
                      f"adjustment:{self.admin_user}:{key}", None, None])

    def book(self, s: Subject, row: list) -> None:
        """Append a scoring entry and keep the subject's running sums (what caps and jobs read)."""
        self.rows.append(row)
        points, t = row[POINTS], row[CREDITED]
        if row[LEDGER] == "assessment":
            s.asmt += points
            s.stand += points
            if points > 0:
                s.pos_month += points
            item = self.rules.items.get(row[ITEM])
            for window, _cap in item.caps if item else ():
                key = (item.code, window, self.window(window, t))
                s.used[key] = s.used.get(key, 0) + points
        elif points > 0:
            if s.red_pos is None:
                s.red_pos = [0] * MONTHS
            s.red_pos[self.m] += points
        else:
            s.red_neg += points

    # -- the settlement jobs at the month's end ---------------------------------------------------------

    def settle(self, s: Subject) -> None:
        m, cutoff, key = self.m, month_start(self.m + 1), month_key(self.m)
        amount = self.rules.decay(s.stand, (cutoff - self.start) // DAY)
        if amount > 0:
            s.stand -= amount
            self.job_row(s, "standing", "decay", "standing.decay", -amount, "standing_decay", key,
                         f"活跃指数衰减（{key}）")
        if m % 12 == 11 and s.asmt != 0:
            year = str(FIRST_YEAR + m // 12)
            self.job_row(s, "assessment", "reset", "assessment.reset", -s.asmt, "assessment_reset", year,
                         f"考核积分清零（{year}）")
            s.asmt = 0
        if s.red_pos is not None:
            if m >= self.rules.expiry_months:
                s.red_old += s.red_pos[m - self.rules.expiry_months]
            expiring = s.red_old + s.red_neg
            if expiring > 0:
                s.red_neg -= expiring
                self.job_row(s, "redeemable", "expiry", "redeemable.expiry", -expiring, "redeemable_expiry", key,
                             f"公益积分过期（{self.rules.expiry_months} 个月有效期，{key}）")

    def job_row(self, s, ledger, kind, item_code, points, job_id, period_key, reason) -> None:
        at = month_start(self.m + 1)
        self.rows.append([0, s.stype, s.sid, ledger, kind, item_code, 100, points, points, None, at, at,
                          self.rules.version, "job", f"{job_id}:{period_key}", None, reason,
                          f"{kind}:{s.stype}:{s.sid}:{ledger}:{period_key}", None, None])

    def flush(self) -> None:
        """Ids in credited_at order (as the live service assigns them), then the rows go to the sink."""
        self.rows.sort(key=lambda r: r[CREDITED])
        for row in self.rows:
            row[ID] = self._next("ledger")
            target = row[REVERSES]
            if target is not None:
                row[REVERSES], row[SRC_ID], row[KEY] = target[ID], str(target[ID]), f"reversal:{target[ID]}"
            self.kinds[row[KIND]] = self.kinds.get(row[KIND], 0) + 1
        self.sink.rows("ledger_entries", self.rows)

    def _next(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value


def _randint(rng: random.Random, low: int, high: int) -> int:
    """random.randint's range, several times faster (the distribution's last-bit bias is irrelevant here)."""
    return low + int(rng.random() * (high - low + 1))


def _next_local_day(t: int) -> int:
    return ((t + LOCAL_OFFSET) // DAY + 1) * DAY - LOCAL_OFFSET


def _cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k

