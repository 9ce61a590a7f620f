"""Member lifecycle: deactivation (离职/退休/组织关系转出), reactivation and dated transfers.

Use cases others call: ``status.deactivate_member``, ``status.reactivate_member``, ``status.status_history``,
``transfer.transfer``; the roster import applies a status column through ``status.deactivate_member`` /
``status.reactivate_member``. ``closing`` closes what he has open: reports, records, sign-ups and
积分超市 orders (cancelled and refunded through ``market.orders.cancel_open_orders``).
The rules are in docs/lifecycle.md.
"""
