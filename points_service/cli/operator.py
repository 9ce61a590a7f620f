"""The operator: who the commands act as when a use case asks for an actor. Administrator rights over the whole
city and no console user, so its audit rows have no actor — the operator's shell is the accountable party."""

from __future__ import annotations

from points_service.domain.access import Grant, Principal
from points_service.models import Role, ScopeType

OPERATOR = Principal(user_id=None, grants=(Grant(Role.ADMIN, ScopeType.CITY, None, ""),))
