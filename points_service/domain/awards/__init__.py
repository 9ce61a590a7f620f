"""Award points and withdrawals of 业务之星 and 流动红旗 awards.

Others call: ``points.credit_star_winners`` (when a run is finalized), ``points.credit_red_flag`` (when a flag is
awarded), ``withdrawals.withdraw_star`` / ``withdrawals.withdraw_red_flag`` (admins) and
``withdrawals.withdrawn_of`` (lists mark withdrawn awards). The rules are in docs/selections.md.
"""
