"""The home page: one dashboard whose cards depend on the user's roles (cards are data: ``CARDS``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, render_template

from points_service.console import nav
from points_service.console.site import current_principal
from points_service.console.views.activities import shows_checkin_code
from points_service.db import db, utcnow
from points_service.domain.access import ORG_ROLES, Principal, allowed
from points_service.domain.activities import signups as activities
from points_service.domain.home import describe_me
from points_service.domain.policy import find_policy
from points_service.models import Role

blp = Blueprint("home", __name__)


@dataclass(frozen=True)
class Card:
    template: str  # a partial under templates/console/home/
    visible: Callable[[Principal], bool]
    load: Callable[[Principal], dict]


def _upcoming(principal: Principal) -> dict:
    statement = activities.list_activities(principal, start=utcnow()).limit(5)
    return {"activities": db.session.scalars(statement).all(),
            "shows_code": lambda activity: shows_checkin_code(principal, activity)}


CARDS = [
    Card("approvals.html", lambda p: allowed(p, "approvals.list"), lambda p: {"count": nav.pending_approvals(p)}),
    Card("reports.html", nav.has_role(Role.COMMUNITY_ADMIN, *ORG_ROLES), lambda p: {"count": nav.pending_reports(p)}),
    Card("activities.html", nav.has_role(Role.COMMUNITY_ADMIN, Role.BRANCH_SECRETARY, Role.ORG_ADMIN), _upcoming),
    Card("policy.html", lambda p: allowed(p, "policy.publish"), lambda _p: {"policy": find_policy()}),
    Card("admin.html", lambda p: allowed(p, "users.manage"), lambda _p: {}),
    # Second round: leaderboard top (ECharts), this quarter's 业务之星, the 流动红旗, HR's annual export.
]


@blp.route("/")
def index():
    principal = current_principal()
    cards = [(f"console/home/{card.template}", card.load(principal)) for card in CARDS if card.visible(principal)]
    return render_template("console/home/index.html", me=describe_me(principal), cards=cards)
