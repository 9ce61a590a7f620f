"""Approvals: records (self-reports, organization records) and proposed activities, and their decisions.

``records`` submits and resubmits (``submit_member_record``, ``submit_organization_record``,
``resubmit_record``, ``own_records``); ``decisions`` holds the state machines, the ``can_*`` predicates and
the decision use cases (``decide``, ``decide_batch``, ``actions_for``); ``queue`` lists what waits for the
caller (``approval_queue``).
"""
