"""Constants of the code go into the SQL text; the hot reads send only their real inputs as parameters."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from points_service.db import sql_constant
from points_service.domain import home
from points_service.domain.access.principals import _grant_statement
from points_service.domain.boards.keys import ScopeKind
from points_service.domain.boards.pages import _page_statement
from points_service.domain.boards.rank import Measure, _own_rank_statement, own_ranks_statement
from points_service.domain.ledger.reading import home_query
from points_service.models import BoardScore, LedgerName, SubjectType


def sql(statement, dialect=None) -> str:
    return str(statement.compile(dialect=dialect or postgresql.dialect()))


@pytest.mark.parametrize(("value", "text"), [(SubjectType.MEMBER, "'member'"), (LedgerName.STANDING, "'standing'"),
                                             ("city", "'city'"), ("street:", "'street:'"), (100, "100"), (-1, "-1"),
                                             (0, "0")])
def test_a_constant_is_written_into_the_sql_text_on_both_engines(value, text):
    statement = sa.select(BoardScore.board).where(BoardScore.subject_type == sql_constant(value))
    for dialect in (postgresql.dialect(), sqlite.dialect()):
        assert f"board_scores.subject_type = {text}" in sql(statement, dialect)
        assert not statement.compile(dialect=dialect).params


@pytest.mark.parametrize("value", ["it's", "a b", "x;--", "名", True, 1.5, None, b"member"])
def test_anything_but_a_plain_constant_is_refused(value):
    with pytest.raises((TypeError, ValueError)):
        sql_constant(value)


def test_get_me_sends_only_the_caller_the_clock_and_the_periods_as_parameters():
    figures, _ = home_query(1, 12, 12, home.utcnow())
    compiled = home._member_statement(figures, 2).compile(dialect=postgresql.dialect())
    assert set(compiled.params) == {"user_id", "at", "member_id", "month", "quarter", "year", "threshold", "cutoff",
                                    "board_0", "board_1", "last_instant", "month_start", "unsettled_threshold",
                                    "unsettled_cutoff", "expiry_key", "expiry_period"}
    assert "POSTCOMPILE" not in str(compiled)  # no expanding IN: the text is the same on every call


@pytest.mark.parametrize(("statement", "inputs"), [
    (_own_rank_statement(ScopeKind.ALL, True), {"board", "member_id"}),  # GET /me/rank
    (_own_rank_statement(ScopeKind.DISTRICT, True), {"board", "member_id"}),
    (own_ranks_statement(1), {"board_0", "member_id"}),
    (_grant_statement(), {"user_id"}),  # the principal
    (_page_statement(SubjectType.MEMBER, ScopeKind.ALL, Measure.OWN, True),
     {"board", "histogram_key", "viewer_id", "offset", "limit"}),  # a page; offset and limit are written in too
    (_page_statement(SubjectType.MEMBER, ScopeKind.COMMUNITY, Measure.OWN, True),
     {"board", "scope_id", "viewer_id", "offset", "limit"}),
    (_page_statement(SubjectType.ORGANIZATION, ScopeKind.ALL, Measure.PER_CAPITA, False), {"board", "offset", "limit"}),
    (_page_statement(SubjectType.ORGANIZATION, ScopeKind.DEPARTMENT, Measure.PARTICIPATION, False),
     {"board", "scope_id", "offset", "limit"}),
])
def test_the_other_hot_reads_send_only_their_inputs(statement, inputs):
    assert set(statement.compile(dialect=postgresql.dialect()).params) == inputs
