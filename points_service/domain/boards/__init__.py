"""Leaderboards and ranks: maintained board rows and histograms (see ``models/boards.py``).

Functions other features call: ``rank.rank_of`` / ``rank.rank_at`` (one rank), ``pages.rank_summary`` (a
member's ranks in all scopes), ``maintain.bump_boards`` (write path, from ``bump_totals``),
``maintain.transfer_on_boards`` / ``maintain.count_member`` (roster changes; ``maintain.bumps_deferred`` around a
batch of them, ``maintain.savepoint_with_bumps`` around one of them that may fail alone), ``audit.compare_boards``
/ ``audit.rebuild_boards`` (I7 check and the set-wise rebuild from ``point_totals``).
"""
