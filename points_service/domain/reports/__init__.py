"""双报到 reports: members to their residence community, department organizations to their paired
community. ``reporting`` holds the use cases (``submit_member_report``, ``submit_org_report``,
``confirm_report``, ``reject_report``, ``list_reports``) and ``report_rate``."""
