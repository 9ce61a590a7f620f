"""流动红旗 for Party branches: ``awards.award_red_flags`` (and its job), ``awards.list_red_flags``,
``awards.award_candidates`` and ``awards.verify_red_flag_award``."""
