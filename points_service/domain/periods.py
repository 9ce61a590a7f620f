"""Periods are half-open [start, end) in the policy's time zone (Asia/Shanghai); instants are UTC.

Keys: ``2026`` (year), ``2026-H2`` (half), ``2026-Q3`` (quarter), ``2026-11`` (month), ``2026-11-21`` (day).
2026-04-01 07:00+08:00 is 2026-Q2 even though it is still 2026-03-31 in UTC.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


class PeriodKind(enum.StrEnum):
    YEAR = "year"
    HALF = "half"
    QUARTER = "quarter"
    MONTH = "month"
    DAY = "day"


# The periods a maintained total is kept for (days are too many to keep; caps query them).
TOTAL_KINDS = (PeriodKind.YEAR, PeriodKind.HALF, PeriodKind.QUARTER, PeriodKind.MONTH)

_PATTERNS = [
    (PeriodKind.DAY, re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")),
    (PeriodKind.MONTH, re.compile(r"^([0-9]{4})-([0-9]{2})$")),
    (PeriodKind.QUARTER, re.compile(r"^([0-9]{4})-Q([1-4])$")),
    (PeriodKind.HALF, re.compile(r"^([0-9]{4})-H([12])$")),
    (PeriodKind.YEAR, re.compile(r"^([0-9]{4})$")),
]


class BadPeriod(ValueError):
    pass


# The years the service keys periods by, and the years a request may name a day or an instant in: beyond them some
# instants cannot be converted to UTC or to +08:00 at all (year 1 at +14:00 is before year 1 in UTC), and before
# 1901 Asia/Shanghai is local mean time (+08:05:43), which RFC 3339 cannot write.
FIRST_YEAR, LAST_YEAR = 2000, 2200
OUTSIDE_YEARS = f"须在 {FIRST_YEAR} 年至 {LAST_YEAR} 年之间"


def within_years(value: date | datetime) -> bool:
    """Whether a day or an instant a request names falls in the service's years (``OUTSIDE_YEARS`` if not)."""
    return FIRST_YEAR <= value.year <= LAST_YEAR

ONE_TICK = timedelta(microseconds=1)  # the smallest step of a datetime: a half-open period's end minus this


@dataclass(frozen=True, order=True)
class Period:
    kind: PeriodKind
    start_date: date  # first local day inside
    end_date: date  # first local day after (exclusive)

    @property
    def key(self) -> str:
        d = self.start_date
        return {
            PeriodKind.YEAR: f"{d.year}",
            PeriodKind.HALF: f"{d.year}-H{1 if d.month <= 6 else 2}",
            PeriodKind.QUARTER: f"{d.year}-Q{(d.month - 1) // 3 + 1}",
            PeriodKind.MONTH: f"{d.year}-{d.month:02d}",
            PeriodKind.DAY: d.isoformat(),
        }[self.kind]

    @property
    def start(self) -> datetime:
        return local_midnight(self.start_date)

    @property
    def end(self) -> datetime:
        return local_midnight(self.end_date)

    @property
    def last_instant(self) -> datetime:
        """The period's last representable instant: what was in force "at the end" of a half-open period."""
        return self.end - ONE_TICK

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def previous(self) -> Period:
        return period_containing(self.start - timedelta(seconds=1), self.kind)

    def next(self) -> Period:
        return period_containing(self.end, self.kind)

    def __str__(self) -> str:
        return self.key


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


_MONTHS = {PeriodKind.YEAR: 12, PeriodKind.HALF: 6, PeriodKind.QUARTER: 3, PeriodKind.MONTH: 1}


def _period_from_start(kind: PeriodKind, start: date) -> Period:
    if kind is PeriodKind.DAY:
        return Period(kind, start, start + timedelta(days=1))
    return Period(kind, start, _add_months(start, _MONTHS[kind]))


def period_containing(instant: datetime, kind: PeriodKind | str) -> Period:
    kind = PeriodKind(kind)
    if instant.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware instant")
    local = instant.astimezone(LOCAL_TZ).date()
    if kind is PeriodKind.DAY:
        return _period_from_start(kind, local)
    span = _MONTHS[kind]
    first_month = (local.month - 1) // span * span + 1
    return _period_from_start(kind, date(local.year, first_month, 1))


def parse_period(key: str) -> Period:
    for kind, pattern in _PATTERNS:
        match = pattern.match(key or "")
        if not match:
            continue
        year = int(match.group(1))
        if not FIRST_YEAR <= year <= LAST_YEAR:
            break
        try:
            if kind is PeriodKind.DAY:
                return _period_from_start(kind, date(year, int(match.group(2)), int(match.group(3))))
            if kind is PeriodKind.MONTH:
                return _period_from_start(kind, date(year, int(match.group(2)), 1))
        except ValueError:
            break
        if kind is PeriodKind.QUARTER:
            return _period_from_start(kind, date(year, (int(match.group(2)) - 1) * 3 + 1, 1))
        if kind is PeriodKind.HALF:
            return _period_from_start(kind, date(year, 1 if match.group(2) == "1" else 7, 1))
        return _period_from_start(kind, date(year, 1, 1))
    raise BadPeriod(f"无法识别的期间：{key!r}（应为 2026、2026-H2、2026-Q3 或 2026-11）")


def period_keys_for(instant: datetime) -> list[str]:
    """The keys of every maintained-total period an instant falls in."""
    return [period_containing(instant, kind).key for kind in TOTAL_KINDS]


def to_rfc3339(instant: datetime | None) -> str | None:
    """Instants leave the service in local time with the offset, e.g. 2026-11-01T09:30:00+08:00."""
    if instant is None:
        return None
    return instant.astimezone(LOCAL_TZ).isoformat(timespec="seconds")
