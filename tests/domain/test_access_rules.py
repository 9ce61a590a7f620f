"""The authorization layer itself: principals resolve grants to scope paths, rules and list filters
agree with each other, and anything odd in a grant narrows access instead of widening it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import (
    Grant,
    Principal,
    allowed,
    authorize,
    can_view_member,
    load_acting_member,
    load_principal,
    member_scope,
    principal_for,
)
from points_service.domain.errors import Forbidden, Unauthorized
from points_service.domain.structure import transfer_member
from points_service.models import Member, Role, RoleGrant, ScopeType, User
from tests.factories import make_user, make_world


@pytest.fixture
def world(app):
    return make_world()


def principal(world, name: str) -> Principal:
    return principal_for(world["users"][name])


def visible(who: Principal) -> set[int]:
    return set(db.session.scalars(sa.select(Member.id).where(member_scope(who))))


def viewable(who: Principal) -> set[int]:
    return {member.id for member in db.session.scalars(sa.select(Member)) if can_view_member(who, member)}


def grant_directly(user: User, role: Role, scope_type: ScopeType, scope_id: int | None) -> Principal:
    """Write a grant the way a buggy import or a hand-edited row might: bypassing validate_grant."""
    db.session.add(RoleGrant(user_id=user.id, role=role, scope_type=scope_type, scope_id=scope_id))
    db.session.commit()
    db.session.refresh(user)
    return principal_for(user)


@pytest.mark.parametrize("name", ["alice", "bob", "secretary", "community_admin", "hr", "admin"])
def test_the_list_filter_and_the_single_object_rule_agree(world, name):
    who = principal(world, name)
    assert visible(who) == viewable(who)


def test_grants_resolve_to_the_paths_of_their_scope_nodes(world):
    hr = principal(world, "hr")
    assert hr.grants == (Grant(Role.HR, ScopeType.ORGANIZATION, world["finance"].id, world["finance"].path),)
    assert principal(world, "admin").grants[0].scope_path == ""
    assert principal(world, "alice").grants == ()


def test_a_scope_path_covers_its_subtree_but_not_a_sibling_sharing_a_digit_prefix():
    grant = Grant(Role.HR, ScopeType.ORGANIZATION, 1, "/1/")
    assert grant.covers("/1/") and grant.covers("/1/12/")
    assert not grant.covers("/12/") and not grant.covers("/2/1/") and not grant.covers(None)


def test_a_transfer_moves_the_member_between_secretaries(world):
    secretary = principal(world, "secretary")
    assert world["alice"].id in visible(secretary)
    transfer_member(world["alice"], world["edu1"], world["south"], None)
    db.session.commit()
    assert world["alice"].id not in visible(secretary)
    edu_secretary = principal_for(make_user((Role.BRANCH_SECRETARY, world["edu1"].id)))
    assert world["alice"].id in visible(edu_secretary)


def test_a_grant_on_a_missing_node_grants_nothing(world):
    user = make_user(username="orphan")
    who = grant_directly(user, Role.HR, ScopeType.ORGANIZATION, 999_999)
    assert visible(who) == set() and viewable(who) == set()


@pytest.mark.parametrize(("role", "scope_type"), [
    (Role.HR, ScopeType.CITY),
    (Role.BRANCH_SECRETARY, ScopeType.CITY),
    (Role.COMMUNITY_ADMIN, ScopeType.CITY),
    (Role.COMMUNITY_ADMIN, ScopeType.ORGANIZATION),
])
def test_a_grant_whose_scope_type_does_not_fit_its_role_grants_nothing(world, role, scope_type):
    # A city-wide scope resolves to the empty path, which covers everything: it must only ever
    # come with the admin role.
    user = make_user(username="misgranted")
    who = grant_directly(user, role, scope_type, world["finance"].id if scope_type is ScopeType.ORGANIZATION else None)
    assert visible(who) == set() and viewable(who) == set()


def test_a_user_with_no_grants_and_no_member_sees_nobody(world):
    nobody = principal_for(make_user(username="plain"))
    assert visible(nobody) == set()
    assert not allowed(nobody, "users.manage")


def test_authorize_says_401_to_no_one_and_403_to_the_wrong_one(world):
    with pytest.raises(Unauthorized):
        authorize(None, "member.view", world["alice"])
    with pytest.raises(Forbidden):
        authorize(principal(world, "bob"), "member.view", world["alice"])
    authorize(principal(world, "alice"), "member.view", world["alice"])


@pytest.mark.parametrize(("name", "may"), [
    ("admin", True), ("hr", False), ("secretary", False), ("community_admin", False), ("alice", False),
])
def test_only_admins_manage_users(world, name, may):
    assert allowed(principal(world, name), "users.manage") is may


def test_an_unknown_action_is_a_programming_error_not_a_silent_allow(world):
    with pytest.raises(KeyError):
        allowed(principal(world, "admin"), "members.delete_everything")


def test_a_scoped_grant_without_a_scope_id_grants_nothing(world):
    who = grant_directly(make_user(username="no_scope"), Role.BRANCH_SECRETARY, ScopeType.ORGANIZATION, None)
    assert visible(who) == set() and viewable(who) == set()


def test_a_members_principal_holds_his_own_places_with_their_real_levels_and_paths(world):
    homes = {(home.is_region, home.kind, home.id, home.path) for home in principal(world, "alice").homes}
    regions = [(True, str(world[key].level), world[key].id, world[key].path)
               for key in ("north_grid", "north", "street", "district")]
    orgs = [(False, str(world[key].kind), world[key].id, world[key].path) for key in ("fin1", "finance")]
    assert homes == {*regions, *orgs}


def test_a_member_without_a_grid_and_a_staff_account_hold_only_what_they_have(world):
    carol = principal_for(make_user(member=world["carol"]))
    assert {home.id for home in carol.homes if home.is_region} == {world[k].id for k in ("north", "street", "district")}
    assert principal(world, "admin").homes == ()


ACCOUNT_FIELDS = ("user_id", "member_id", "token_version", "branch_id", "community_id")


@pytest.mark.parametrize("name", ["alice", "bob", "secretary", "community_admin", "hr", "admin"])
def test_an_acting_members_principal_names_what_his_full_one_does_and_grants_nothing(world, name):
    user = world["users"][name]
    full, acting = load_principal(user.id), load_acting_member(user.id)
    assert [getattr(acting, f) for f in ACCOUNT_FIELDS] == [getattr(full, f) for f in ACCOUNT_FIELDS]
    assert acting.grants == () and acting.homes == ()
    assert not allowed(acting, "users.manage") and not allowed(acting, "member.view", world["carol"])


@pytest.mark.parametrize("refused", ["account_disabled", "member_deactivated", "account_gone"])
def test_an_acting_members_principal_is_refused_where_the_full_one_is(world, refused):
    user = world["users"]["alice"]
    assert load_acting_member(user.id) is not None
    user_id = user.id
    if refused == "account_disabled":
        user.is_active = False
    elif refused == "member_deactivated":
        world["alice"].is_active = False
    else:
        db.session.delete(user)
    db.session.commit()
    assert load_principal(user_id) is None and load_acting_member(user_id) is None
