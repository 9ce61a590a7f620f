"""Re-exports every model so that ``from points_service.models import Member`` works everywhere."""

from points_service.models.accounts import ROLE_SCOPE, RefreshToken, Role, RoleGrant, ScopeType, User, WechatIdentity
from points_service.models.audit import AuditEntry
from points_service.models.people import Affiliation, Member
from points_service.models.structure import (
    ORG_KIND_NAMES,
    REGION_LEVEL_NAMES,
    Organization,
    OrgKind,
    Region,
    RegionLevel,
)

__all__ = [
    "ORG_KIND_NAMES",
    "REGION_LEVEL_NAMES",
    "ROLE_SCOPE",
    "Affiliation",
    "AuditEntry",
    "Member",
    "Organization",
    "OrgKind",
    "RefreshToken",
    "Region",
    "RegionLevel",
    "Role",
    "RoleGrant",
    "ScopeType",
    "User",
    "WechatIdentity",
]
