"""Annual settlement (年度结算) and the statements HR pulls.

``settlement`` is the use case (``settle_year``, ``settle_year_job``, ``get_settlement``, ``verify_settlement``,
``require_settlement``, ``corrections_after_settlement``); ``facts`` are its grouped reads of the year and
``grading`` its pure ranking and grading, which the settlement and its verification share.
"""
