"""双报到 reports: members to their residence community, department organizations to their paired
community. ``reporting`` holds the use cases (``submit_member_report``, ``submit_org_report``,
``confirm_report``, ``reject_report``, ``list_reports``); ``rates`` who has (not) reported: ``report_status``,
``report_rate`` and the shared ``confirmed_members`` / ``confirmed_subjects``."""
