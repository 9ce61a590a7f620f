"""Notifications: an in-app inbox message for every member event, and a WeChat subscribe message when the
member granted one (outbox written in the event's transaction, sent by the delivery job).

Other use cases call the event hooks (flush only, inside their transaction): ``record_decided``,
``report_decided``, ``star_run_published``, ``star_publicity_extended``, ``star_winners_removed``,
``order_moved``, ``activity_cancelled``, ``activity_moved``; or ``notify`` for a new event.

``purge_deliveries`` (the daily ``retention`` job) deletes outbox rows that ended long ago; the inbox is kept.
"""

from points_service.domain.notifications.config import (
    EVENT_VALUES,
    NotificationConfig,
    NotificationConfigInvalid,
    init_app,
    load_config,
    notification_config,
)
from points_service.domain.notifications.events import (
    activity_cancelled,
    activity_moved,
    order_moved,
    record_decided,
    report_decided,
    star_publicity_extended,
    star_run_published,
    star_winners_removed,
)
from points_service.domain.notifications.inbox import (
    MessageNotFound,
    grant_subscriptions,
    mark_read,
    own_messages,
    subscriptions,
    unread_count,
)
from points_service.domain.notifications.outbox import notify
from points_service.domain.notifications.retention import purge_deliveries

__all__ = [
    "EVENT_VALUES",
    "MessageNotFound",
    "NotificationConfig",
    "NotificationConfigInvalid",
    "activity_cancelled",
    "activity_moved",
    "grant_subscriptions",
    "init_app",
    "load_config",
    "mark_read",
    "notification_config",
    "notify",
    "order_moved",
    "own_messages",
    "purge_deliveries",
    "record_decided",
    "report_decided",
    "star_publicity_extended",
    "star_run_published",
    "star_winners_removed",
    "subscriptions",
    "unread_count",
]
