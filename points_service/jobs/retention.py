"""The daily ``retention`` job: deletes rows that only served a short-lived purpose once they are older than their
retention (settings ``IDEMPOTENCY_RETENTION_DAYS``, ``DELIVERY_RETENTION_DAYS``), each owning package purging its
own. The ages are counted back from the settled day's end (the fire day's local midnight), so a late or repeated
run of a day deletes the same rows; each batch is committed as it goes (a big table holds no long transaction),
and a run that stops halfway leaves the rest to the next day's."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from points_service.domain.idempotency import purge_idempotency_keys
from points_service.domain.notifications import purge_deliveries
from points_service.domain.periods import Period
from points_service.domain.policy import Policy


def retention_job(period: Period, _policy: Policy | None = None) -> dict:
    config = current_app.config
    batch_size = config.get("RETENTION_BATCH_ROWS", 5000)
    keys_before = period.end - timedelta(days=config.get("IDEMPOTENCY_RETENTION_DAYS", 30))
    deliveries_before = period.end - timedelta(days=config.get("DELIVERY_RETENTION_DAYS", 90))
    return {"idempotency_keys": purge_idempotency_keys(keys_before, batch_size=batch_size),
            "deliveries": purge_deliveries(deliveries_before, batch_size=batch_size)}
