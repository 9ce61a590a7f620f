"""The navigation as data: which sections a user sees and the counts shown beside them.

Visibility here is only what the menu offers; each page's use case still authorizes (a hidden link is
not a permission). To add a section: one ``NavItem`` row (and, for a count, one ``BADGES`` entry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import ORG_ROLES, Principal, allowed
from points_service.domain.approvals import queue as approval_queue
from points_service.domain.reports.reporting import list_reports
from points_service.models import ReportStatus, Role


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    visible: Callable[[Principal], bool]
    badge: str | None = None  # a key of BADGES
    group: str = "工作"


def anyone(_principal: Principal) -> bool:
    return True


def has_role(*roles: Role) -> Callable[[Principal], bool]:
    return lambda principal: principal.is_admin or principal.has(*roles)


ADMIN = "管理"
NAV: list[NavItem] = [
    NavItem("首页", "console.home.index", anyone),
    NavItem("审批", "console.approvals.queue", lambda p: allowed(p, "approvals.list"), badge="approvals"),
    NavItem("报到", "console.reports.index", has_role(Role.COMMUNITY_ADMIN, *ORG_ROLES), badge="reports"),
    NavItem("活动", "console.activities.index", has_role(Role.COMMUNITY_ADMIN, Role.BRANCH_SECRETARY, Role.ORG_ADMIN)),
    NavItem("党员", "console.people.members", has_role(Role.COMMUNITY_ADMIN, *ORG_ROLES)),
    NavItem("排行榜", "console.boards.leaderboard", anyone),
    NavItem("评选", "console.selections.index", anyone),
    NavItem("积分超市", "console.market.index", lambda p: allowed(p, "market.desk")),
    NavItem("年度考核", "console.hr.statements", lambda p: allowed(p, "hr.export_own_scope")),
    NavItem("花名册导入", "console.admin_roster.upload", lambda p: allowed(p, "roster.import", "members"), group=ADMIN),
    NavItem("积分政策", "console.admin_policy.versions", lambda p: allowed(p, "policy.publish"), group=ADMIN),
    NavItem("用户与授权", "console.admin_users.users", lambda p: allowed(p, "users.manage"), group=ADMIN),
    NavItem("消息通知", "console.notifications.index", lambda p: allowed(p, "notifications.monitor"), group=ADMIN),
]


def pending_approvals(principal: Principal) -> int:
    return approval_queue.approval_queue(principal, approval_queue.QueueFilter(), page_size=1)["total"]


def pending_reports(principal: Principal) -> int:
    """Pending reports he may decide (a secretary sees his members' reports but confirms none of them)."""
    statement = list_reports(principal, status=ReportStatus.PENDING, to_decide=True).order_by(None).subquery()
    return db.session.scalar(sa.select(sa.func.count()).select_from(statement))


BADGES: dict[str, Callable[[Principal], int]] = {"approvals": pending_approvals, "reports": pending_reports}


def visible_items(principal: Principal) -> list[NavItem]:
    return [item for item in NAV if item.visible(principal)]


def badge_counts(principal: Principal, items: list[NavItem]) -> dict[str, int]:
    return {item.badge: BADGES[item.badge](principal) for item in items if item.badge}
