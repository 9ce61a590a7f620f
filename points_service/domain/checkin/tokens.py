"""The pure rules of a verified check-in: rotating signed tokens, the geofence, time windows and hours.

No database and no clock of their own: every function takes the instant it judges, so tests cross the
edges exactly. The use cases in ``checkin`` pass the server clock (a client's time is never trusted).

Token: ``base36(activity id) "." base36(step) "." 12 chars of base32 HMAC-SHA256(secret, "id:step")``,
at most 26 characters — it fits a mini-program code's 32-character ``scene``. ``step`` is
``floor(unix time / step seconds)``; the current and the previous step are accepted (a member who scans
just before the screen refreshes is not refused), two steps old is not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

SIGNATURE_CHARS = 12  # 60 bits of the HMAC: guessing one within a 30-second step is hopeless
ACCEPTED_STEPS_BACK = 1  # the previous step is still accepted
MAX_TOKEN_CHARS = 32  # a mini-program code's scene
EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius; gcj02 is locally consistent, so distances hold

# When a member may check in: from half an hour before the start until the end (half-open).
CHECKIN_OPENS_BEFORE_START = timedelta(minutes=30)
# When a member may check out: from the start until half an hour after the end. Kept under the hour so that the
# consequences job (01:00 the next day) never settles an activity whose check-out is still open.
CHECKOUT_CLOSES_AFTER_END = timedelta(minutes=30)
# A check-in more than this after the start costs the policy's ``late`` deduction.
LATE_AFTER_START = timedelta(minutes=10)
HALF_HOUR_SECONDS = 1800

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    step: int
    expires_at: datetime  # the last instant it is accepted (end of the following step)


def base36(number: int) -> str:
    if number < 0:
        raise ValueError("base36 of a negative number")
    digits = ""
    while True:
        number, remainder = divmod(number, 36)
        digits = _BASE36[remainder] + digits
        if number == 0:
            return digits


def step_of(at: datetime, step_seconds: int) -> int:
    return int(at.timestamp()) // step_seconds


def make_token(activity_id: int, secret: str, step: int) -> str:
    digest = hmac.new(secret.encode(), f"{activity_id}:{step}".encode(), hashlib.sha256).digest()
    signature = base64.b32encode(digest).decode("ascii").lower()[:SIGNATURE_CHARS]
    return f"{base36(activity_id)}.{base36(step)}.{signature}"


def issue_token(activity_id: int, secret: str, at: datetime, step_seconds: int) -> IssuedToken:
    step = step_of(at, step_seconds)
    expires = datetime.fromtimestamp((step + 1 + ACCEPTED_STEPS_BACK) * step_seconds, UTC)
    return IssuedToken(make_token(activity_id, secret, step), step, expires)


def token_is_valid(token: str, activity_id: int, secret: str, at: datetime, step_seconds: int) -> bool:
    """True if ``token`` was issued for this activity in the current or the previous step.

    The whole token is compared in constant time with each accepted expected token, so a token of
    another activity, a forged signature or a re-encoded number never matches."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        return False
    presented = token.encode("utf-8", "replace")
    current = step_of(at, step_seconds)
    matches = [hmac.compare_digest(presented, make_token(activity_id, secret, step).encode())
               for step in range(current - ACCEPTED_STEPS_BACK, current + 1)]
    return any(matches)


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lng2 - lng1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def checkin_open(starts_at: datetime, ends_at: datetime, at: datetime) -> bool:
    return starts_at - CHECKIN_OPENS_BEFORE_START <= at < ends_at


def checkout_open(starts_at: datetime, ends_at: datetime, checked_in_at: datetime, at: datetime) -> bool:
    """From the start (or the check-in, if later) until half an hour after the end. A check-out before the start
    would count no hours and close the check-in for good: it is refused, and the member checks out later."""
    return max(starts_at, checked_in_at) <= at < ends_at + CHECKOUT_CLOSES_AFTER_END


def is_late(starts_at: datetime, checked_in_at: datetime) -> bool:
    return checked_in_at > starts_at + LATE_AFTER_START


def service_hours(starts_at: datetime, ends_at: datetime, checked_in_at: datetime,
                  checked_out_at: datetime) -> Decimal:
    """Hours present within the activity's scheduled window, rounded DOWN to the half hour.

    Arriving early or leaving late does not add hours; the policy item's per-activity maximum is
    applied later by the points engine."""
    begin, end = max(starts_at, checked_in_at), min(ends_at, checked_out_at)
    half_hours = max(0, int((end - begin).total_seconds()) // HALF_HOUR_SECONDS)
    return Decimal(half_hours) / 2
