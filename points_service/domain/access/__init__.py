"""Access control as data: the one place that decides whether a principal may do an action on an object.

A ``Principal`` is who is asking, with every role grant resolved to the path of its scope node
(``principals``). The ``RULES`` table maps each action to a predicate ``(principal, obj) -> bool``; ``authorize``
raises ``Forbidden`` when it says no. List endpoints ask ``member_scope`` for the matching SQL filter instead of
filtering in Python, so a client-supplied id never widens what a caller sees (``rules``).
"""

from points_service.domain.access.principals import (
    Grant,
    Home,
    Principal,
    load_acting_member,
    load_principal,
    principal_for,
)
from points_service.domain.access.rules import (
    ACTION_ROLES,
    ORG_MANAGERS,
    ORG_ROLES,
    RULES,
    BoardNode,
    allowed,
    authorize,
    authorize_or_hide,
    can_administer_community_of,
    can_view_member,
    could_be_allowed,
    member_scope,
    nodes_in_scope,
    report_decide_scope,
)

__all__ = [
    "ACTION_ROLES", "ORG_MANAGERS", "ORG_ROLES", "RULES", "BoardNode", "Grant", "Home", "Principal", "allowed",
    "authorize", "authorize_or_hide", "can_administer_community_of", "can_view_member", "could_be_allowed",
    "load_acting_member", "load_principal", "member_scope", "nodes_in_scope", "principal_for",
    "report_decide_scope",
]
