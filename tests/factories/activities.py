"""Factories for activity and check-in tests: activities at a venue, and scans made at a given instant."""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta

from points_service.db import db, utcnow
from points_service.domain.activities.signups import ActivityDraft, Venue
from points_service.domain.checkin import tokens as rules
from points_service.domain.checkin.scans import Scan
from points_service.models import Activity, ActivityStatus, Region

VENUE_LAT, VENUE_LNG = 35.4154, 116.5872  # 济宁, gcj02
RADIUS_M = 100
STEP_SECONDS = 30


def north_of(metres: float, lat: float = VENUE_LAT) -> float:
    """The latitude ``metres`` due north of ``lat`` (on the haversine sphere, so distances are exact)."""
    return lat + math.degrees(metres / rules.EARTH_RADIUS_M)


def make_activity(community: Region, starts_at: datetime | None = None, *, hours: float = 2,
                  status: ActivityStatus = ActivityStatus.PUBLISHED, capacity: int | None = None,
                  item_code: str = "member.activity_hour", lat: float = VENUE_LAT, lng: float = VENUE_LNG,
                  radius_m: int = RADIUS_M, proposed_by=None) -> Activity:
    """An activity written directly (past ones too); publishing rules are tested through the use case."""
    starts_at = starts_at or utcnow()
    activity = Activity(community_id=community.id, title="固定服务日：清理楼道", item_code=item_code,
                        starts_at=starts_at, ends_at=starts_at + timedelta(hours=hours), venue_lat=lat,
                        venue_lng=lng, radius_m=radius_m, capacity=capacity, status=status,
                        proposed_by_org_id=proposed_by.id if proposed_by else None,
                        checkin_secret=secrets.token_hex(32))
    db.session.add(activity)
    db.session.flush()
    return activity


def draft(community: Region, starts_at: datetime, **overrides) -> ActivityDraft:
    values = {"community_id": community.id, "title": "固定服务日", "item_code": "member.activity_hour",
              "starts_at": starts_at, "ends_at": starts_at + timedelta(hours=2),
              "venue": Venue(VENUE_LAT, VENUE_LNG, RADIUS_M), "capacity": None}
    values.update(overrides)
    return ActivityDraft(**values)


def scan(activity: Activity, at: datetime, *, metres: float = 0, accuracy: float | None = None,
         token: str | None = None) -> Scan:
    """What a phone ``metres`` north of the venue posts after scanning the code shown at ``at``."""
    token = token or rules.issue_token(activity.id, activity.checkin_secret, at, STEP_SECONDS).token
    return Scan(token, north_of(metres, activity.venue_lat), activity.venue_lng, accuracy)


def scan_body(token: str, *, metres: float = 0, accuracy: float | None = None) -> dict:
    body = {"token": token, "lat": north_of(metres), "lng": VENUE_LNG}
    if accuracy is not None:
        body["accuracy"] = accuracy
    return body
