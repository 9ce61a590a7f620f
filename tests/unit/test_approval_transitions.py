"""The approval state machines as tables: every (from, to) pair is either allowed or refused."""

from __future__ import annotations

import itertools

import pytest

from points_service.domain.approvals.decisions import (
    PROPOSAL_TRANSITIONS,
    RECORD_DECISIONS,
    RECORD_TRANSITIONS,
    Decision,
    Stage,
    can_transition,
)
from points_service.models import TERMINAL_RECORD_STATUSES, RecordStatus

S = RecordStatus
ALLOWED_RECORD_MOVES = {
    (S.PENDING, S.APPROVED), (S.PENDING, S.REJECTED), (S.PENDING, S.NEEDS_INFO), (S.NEEDS_INFO, S.PENDING),
}
ALLOWED_PROPOSAL_MOVES = {
    (Stage.PROPOSED, Stage.ORG_APPROVED), (Stage.PROPOSED, Stage.REJECTED),
    (Stage.ORG_APPROVED, Stage.PUBLISHED), (Stage.ORG_APPROVED, Stage.REJECTED),
    (Stage.ORG_APPROVED, Stage.PROPOSED),  # edited after the organization approved: approved again from step 1
    (Stage.PUBLISHED, Stage.CANCELLED),  # called off by its host community (activities.cancelling)
}


@pytest.mark.parametrize("start,end", list(itertools.product(RecordStatus, repeat=2)))
def test_each_record_move_is_allowed_exactly_when_the_table_says_so(start, end):
    assert can_transition(start, end) == ((start, end) in ALLOWED_RECORD_MOVES)


@pytest.mark.parametrize("start,end", list(itertools.product(Stage, repeat=2)))
def test_each_proposal_move_is_allowed_exactly_when_the_table_says_so(start, end):
    assert can_transition(start, end) == ((start, end) in ALLOWED_PROPOSAL_MOVES)


def test_every_state_has_a_row_so_no_state_is_forgotten():
    assert set(RECORD_TRANSITIONS) == set(RecordStatus)
    assert set(PROPOSAL_TRANSITIONS) == set(Stage)


def test_terminal_record_states_lead_nowhere_and_every_other_state_leads_somewhere():
    for status in RecordStatus:
        assert (RECORD_TRANSITIONS[status] == frozenset()) == (status in TERMINAL_RECORD_STATUSES)


def test_no_state_moves_to_itself():
    assert not any(can_transition(status, status) for status in [*RecordStatus, *Stage])


def test_each_decision_names_a_state_reachable_from_pending():
    assert {RECORD_DECISIONS[d] for d in Decision} == RECORD_TRANSITIONS[S.PENDING]


def test_a_record_waiting_for_information_cannot_be_approved_before_it_is_resubmitted():
    assert not can_transition(S.NEEDS_INFO, S.APPROVED)
    assert can_transition(S.NEEDS_INFO, S.PENDING) and can_transition(S.PENDING, S.APPROVED)
