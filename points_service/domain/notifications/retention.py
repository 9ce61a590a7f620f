"""Purging the outbox: a delivery that has ended (sent, failed, refused for good) is kept for
``DELIVERY_RETENTION_DAYS`` after its outcome, then deleted by the daily ``retention`` job.

Only outbox rows: a delivery still to be sent (``pending``, ``sending``) is never purged, and the member's inbox
messages (``notification_messages``) are his own and stay.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from points_service.db import purge_in_batches
from points_service.models import Delivery, DeliveryState

ENDED = (DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.PERMANENT_FAILED)


def purge_deliveries(before: datetime, *, batch_size: int = 5000) -> int:
    """Delete the deliveries that ended (``updated_at``, the outcome's time) before ``before``, ``batch_size`` rows
    per statement, each batch committed. Returns the count."""
    deliveries = Delivery.__table__
    ended = sa.and_(deliveries.c.state.in_(ENDED), deliveries.c.updated_at < before)
    return purge_in_batches(deliveries, ended, batch_size)
