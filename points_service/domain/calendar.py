"""Working days (工作日) for publicity windows: Monday to Friday, except where the admin-maintained
``calendar_days`` table says otherwise (statutory holidays on weekdays, 调休 Saturdays and Sundays).

The table is the source: a package such as chinese-calendar only knows the years published when it was
released, so at most it seeds rows. ``add_working_days`` is pure; the use cases load the overrides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain import periods
from points_service.domain.access import Principal, authorize
from points_service.domain.audit import audit
from points_service.domain.errors import ValidationFailed
from points_service.models import CalendarDay

LOOKAHEAD = timedelta(days=400)  # overrides loaded past a start date: more than any publicity window needs
MAX_WORKING_DAYS = 60


def is_working_day(day: date, overrides: Mapping[date, bool]) -> bool:
    return overrides.get(day, day.weekday() < 5)


def add_working_days(start: date, count: int, overrides: Mapping[date, bool]) -> date:
    """The ``count``-th working day AFTER ``start`` (``start`` itself never counts): published on a Friday
    with 5 working days and no holidays, the window's last day is the next Friday. Zero (a policy's
    ``publicity_working_days: 0``) is ``start`` itself."""
    if not 0 <= count <= MAX_WORKING_DAYS:
        raise ValueError(f"working days must be 0..{MAX_WORKING_DAYS}: {count}")
    day, counted = start, 0
    while counted < count:
        day += timedelta(days=1)
        counted += is_working_day(day, overrides)
    return day


def overrides_between(start: date, end: date) -> dict[date, bool]:
    rows = db.session.execute(sa.select(CalendarDay.day, CalendarDay.working)
                              .where(CalendarDay.day >= start, CalendarDay.day <= end))
    return {day: working for day, working in rows}


def working_days_after(start: date, count: int) -> date:
    """``add_working_days`` over the stored overrides."""
    return add_working_days(start, count, overrides_between(start, start + LOOKAHEAD))


# ------------------------------------------------------------------------------ the admin's overrides

def list_calendar_days(actor: Principal, year: int) -> list[CalendarDay]:
    authorize(actor, "calendar.manage")
    return list(db.session.scalars(sa.select(CalendarDay).where(
        CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31)).order_by(CalendarDay.day)))


def parse_day(text: str) -> date:
    """A path's day: YYYY-MM-DD within the service's years, as a body's or a query's day (else 422 naming ``day``)."""
    try:
        day = date.fromisoformat(text) if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text) else None
    except ValueError:
        day = None
    if day is None:
        raise ValidationFailed({"day": ["日期应为 YYYY-MM-DD，如 2026-10-08"]})
    if not periods.within_years(day):
        raise ValidationFailed({"day": [periods.OUTSIDE_YEARS]})
    return day


def set_calendar_day(actor: Principal, day: date, working: bool, name: str = "", *,
                     now: datetime | None = None) -> CalendarDay:
    """Mark one day a holiday (working = false) or a 调休 working day (working = true); marking a day as what
    it is anyway (a working Monday) removes its override. Runs already published keep their window end."""
    authorize(actor, "calendar.manage")
    row = db.session.get(CalendarDay, day)
    before = None if row is None else {"working": row.working, "name": row.name}
    if working == (day.weekday() < 5):
        if row is not None:
            db.session.delete(row)
        row = CalendarDay(day=day, working=working, name="")
    else:
        row = row or CalendarDay(day=day)
        row.working, row.name, row.updated_by_id, row.updated_at = working, name, actor.user_id, now or utcnow()
        db.session.add(row)
    audit("calendar.set", actor=actor, target_type="calendar_days", target_id=day.isoformat(),
          detail={"working": working, "name": name, "before": before})
    db.session.commit()
    return row
