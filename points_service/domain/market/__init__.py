"""积分超市: members spend their redeemable points on items their community (and the regions above it) offer.

What others may call:
- ``catalogue``: ``ItemDraft``, ``create_item`` / ``update_item`` (optionally with a picture upload),
  ``set_picture``, ``adjust_stock``, ``item_for_admin``, ``admin_items``, ``offering_regions`` (admins of the
  item's region), ``offered_items`` (optionally of one region level) / ``offered_item`` (members, with
  ``affordable`` and ``limit_left``);
- ``orders``: ``OrderRequest``, ``place_order``, ``cancel_own_order``, ``cancel_by_admin``, ``pick_up`` (a typed
  or scanned code), ``order_for_desk``, ``own_orders``, ``order_queue``, ``open_order_count`` and the job
  ``expire_uncollected``;
- ``report``: ``monthly_report`` (redemptions per community and month, for the console);
- ``rules``: the pure rules (states, pick-up codes, limits, what may be spent); ``errors``: the stable codes.
"""
