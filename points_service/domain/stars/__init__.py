"""业务之星 (quarterly stars).

``runs`` is the run's life cycle (``propose_star_run``, ``propose_quarter_stars``, ``publish_star_run``,
``raise_objection``, ``decide_objection``, ``finalize_star_run``); ``reading`` what reviewers and members
read (and ``verify_star_run``); ``facts`` the city-wide grouped reads, which 流动红旗 shares; ``rules`` the
pure selection (``select_stars``, ``checksum_of``).
"""
