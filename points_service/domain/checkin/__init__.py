"""Verified check-in and check-out at activities, and the day-after consequences.

``scans`` are the use cases (``checkin_code``, ``check_in``, ``check_out``, ``resolve_review``,
``list_checkins``); ``tokens`` the pure rules (rotating tokens, geofence, windows, hours); ``consequences``
the no-show and no-check-out deductions (job ``activity_consequences``).
"""
