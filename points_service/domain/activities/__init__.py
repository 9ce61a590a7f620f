"""Activities (服务活动): publishing, proposing, editing and cancelling them, members signing up and withdrawing.

Others call ``signups``: ``publish_activity``, ``propose_activity``, ``edit_activity`` (and ``may_edit``, who may
edit it now), ``list_activities``, ``get_activity`` (``view_activity`` and
``with_signed_up`` add whether the caller signed up), ``sign_up``, ``withdraw`` and ``acting_member`` (the member
behind a principal); and ``cancelling``: ``cancel_activity`` (and ``can_cancel``). Checking in and out lives in
``domain/checkin``.
"""
