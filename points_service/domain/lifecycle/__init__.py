"""Member lifecycle: deactivation (离职/退休/组织关系转出), reactivation and dated transfers.

Use cases others call: ``status.deactivate_member``, ``status.reactivate_member``, ``status.status_history``,
``transfer.transfer``; the roster import applies a status column through ``status.deactivate_member`` /
``status.reactivate_member``. ``closing.close_open_orders(member)`` is the hook the 积分超市 fills in to cancel
a deactivated member's open orders. The rules are in docs/lifecycle.md.
"""
