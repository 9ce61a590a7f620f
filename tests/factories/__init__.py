"""Factory functions for tests: ``make_member(**overrides)`` and friends. They flush, tests commit."""

from __future__ import annotations

import itertools
from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from flask_jwt_extended import create_access_token

from points_service.db import db
from points_service.domain.accounts.users import add_user
from points_service.domain.periods import LOCAL_TZ
from points_service.domain.phones import hash_phone, mask_phone, normalize_phone
from points_service.domain.structure import add_organization, add_region, enroll_member
from points_service.models import ROLE_SCOPE, Member, Organization, OrgKind, Pairing, Region, RegionLevel, Role, User

_seq = itertools.count(1)
PASSWORD = "correct-horse-42"


def _n() -> int:
    return next(_seq)


def make_region(level: RegionLevel = RegionLevel.COMMUNITY, parent: Region | None = None, **overrides) -> Region:
    n = _n()
    return add_region(overrides.get("code", f"R{n}"), overrides.get("name", f"区划{n}"), level, parent)


def make_city() -> dict:
    """A small tree: one city, one district, one street, two communities with a grid each."""
    city = make_region(RegionLevel.CITY, name="济宁市")
    district = make_region(RegionLevel.DISTRICT, city, name="任城区")
    street = make_region(RegionLevel.STREET, district, name="古槐街道")
    north = make_region(RegionLevel.COMMUNITY, street, name="北门社区")
    south = make_region(RegionLevel.COMMUNITY, street, name="南门社区")
    return {
        "city": city, "district": district, "street": street, "north": north, "south": south,
        "north_grid": make_region(RegionLevel.GRID, north, name="北门一网格"),
        "south_grid": make_region(RegionLevel.GRID, south, name="南门一网格"),
    }


# When the factories' members joined the roster and their departments were paired: before every period the tests
# score, so that each belongs to his branch in them (``lifecycle.membership``: a member belongs nowhere before his
# first affiliation began) and each branch to its department's district (``red_flags.awards``).
ROSTER_LOADED = datetime(2024, 1, 1, tzinfo=LOCAL_TZ)


def make_department(community: Region | None = None, **overrides) -> Organization:
    n = _n()
    return add_organization(overrides.get("code", f"D{n}"), overrides.get("name", f"市某局党委{n}"),
                            OrgKind.DEPARTMENT, None, community, since=overrides.get("since", ROSTER_LOADED))


def make_branch(department: Organization, **overrides) -> Organization:
    n = _n()
    return add_organization(overrides.get("code", f"B{n}"), overrides.get("name", f"第{n}党支部"),
                            OrgKind.BRANCH, department)


def pairing_history(org: Organization) -> list[tuple[int, datetime, datetime | None]]:
    """(community id, valid_from, valid_to) of the organization's pairings, oldest first."""
    rows = db.session.execute(sa.select(Pairing.community_id, Pairing.valid_from, Pairing.valid_to)
                              .where(Pairing.organization_id == org.id).order_by(Pairing.valid_from))
    return [tuple(row) for row in rows]


def make_phone() -> str:
    return f"139{_n():08d}"


def make_member(branch: Organization, community: Region, grid: Region | None = None, **overrides) -> Member:
    phone = normalize_phone(overrides.get("phone") or make_phone())
    return enroll_member(overrides.get("name", f"党员{_n()}"), hash_phone(phone, current_app.config["PHONE_HASH_KEY"]),
                         mask_phone(phone), branch, community, grid, since=overrides.get("since", ROSTER_LOADED))


def make_user(*grants: tuple[Role, int | None], username: str | None = None, member: Member | None = None) -> User:
    """make_user((Role.BRANCH_SECRETARY, branch.id)) — a console user with those grants."""
    if member is not None and not grants and username is None:
        user = User(member_id=member.id, display_name=member.name)
        db.session.add(user)
        db.session.flush()
        return user
    user = add_user(username or f"user{_n()}", PASSWORD,
                    [(role, ROLE_SCOPE[role], scope_id) for role, scope_id in grants])
    if member is not None:
        user.member_id = member.id
    db.session.flush()
    return user


def auth_header(user: User) -> dict:
    return {"Authorization": f"Bearer {create_access_token(identity=f'u:{user.id}')}"}


def make_world() -> dict:
    """A city with two departments, three branches, members and one user per role."""
    city = make_city()
    finance = make_department(city["north"], name="市财政局党委")
    education = make_department(city["south"], name="市教育局党委")
    fin1, fin2 = make_branch(finance, name="财政局第一党支部"), make_branch(finance, name="财政局第二党支部")
    edu1 = make_branch(education, name="教育局第一党支部")
    alice = make_member(fin1, city["north"], city["north_grid"], name="张晓丽")
    bob = make_member(fin2, city["south"], city["south_grid"], name="李·建国")
    carol = make_member(edu1, city["north"], None, name="王𠮷")
    world = {**city, "finance": finance, "education": education, "fin1": fin1, "fin2": fin2, "edu1": edu1,
             "alice": alice, "bob": bob, "carol": carol}
    world["users"] = {
        "alice": make_user(member=alice),
        "bob": make_user(member=bob),
        "secretary": make_user((Role.BRANCH_SECRETARY, fin1.id), username="secretary"),
        "community_admin": make_user((Role.COMMUNITY_ADMIN, city["north"].id), username="north_admin"),
        "hr": make_user((Role.HR, finance.id), username="finance_hr"),
        "admin": make_user((Role.ADMIN, None), username="admin"),
    }
    db.session.commit()
    return world


def make_wechat_identity(openid: str | None = None, user: User | None = None, **overrides):
    """A mini-program user as code2session left it (a WechatIdentity); bound to ``user`` when given."""
    from points_service.models import WechatIdentity

    identity = WechatIdentity(openid=openid or f"oTest{_n():08d}", user_id=user.id if user else None,
                              session_key=overrides.get("session_key", "server-side-session-key=="),
                              unionid=overrides.get("unionid"))
    db.session.add(identity)
    db.session.flush()
    return identity
