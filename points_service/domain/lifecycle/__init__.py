"""Member lifecycle: deactivation (离职/退休/组织关系转出), reactivation and dated transfers.

Use cases others call: ``status.deactivate_member``, ``status.reactivate_member``, ``status.status_history``,
``transfer.transfer``; the roster import applies a status column through ``status.deactivate_member`` /
``status.reactivate_member``. ``closing`` closes what he has open: reports, records, sign-ups and
积分超市 orders (cancelled and refunded through ``market.orders.cancel_open_orders``).
``guard.lock_active_member`` and ``guard.ACTIVE_MEMBER`` let what only an active member opens (a self-report, a
报到, a sign-up) take his row as it writes, so a deactivation closes it or it is refused.
The rules are in docs/lifecycle.md.
"""
