"""Activities (服务活动): publishing, proposing and editing them, members signing up and withdrawing.

Others call ``signups``: ``publish_activity``, ``propose_activity``, ``edit_activity`` (and ``may_edit``, who may
edit it now), ``list_activities``, ``get_activity``, ``sign_up``, ``withdraw`` and ``acting_member`` (the member
behind a principal). Checking in and out lives in ``domain/checkin``.
"""
