"""The demo city: its shape, its reproducibility, its refusals, its accounts and the ``flask demo`` commands."""

from __future__ import annotations

import hashlib
import json
import random
import stat
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from points_service.db import db
from points_service.domain.demo.city import ENROLLED_SINCE, DemoSize, person_name, seed_demo
from points_service.domain.demo.names import DISTRICTS
from points_service.domain.market.standing import balance_of
from points_service.domain.phones import hash_phone, mask_phone, normalize_phone
from points_service.models import (
    MarketItem,
    Member,
    Organization,
    OrgKind,
    Region,
    RegionLevel,
    Role,
    RoleGrant,
    User,
)
from tests.dbutil import reset_database
from tests.factories import pairing_history

SMALL = DemoSize(communities=6, departments=5, members=60)
SMALL_ARGS = ["--communities", "6", "--departments", "5", "--members", "60"]
SOURCE_ROOT = Path(__file__).resolve().parents[3]
NOT_SOURCE = {".venv", ".git", "instance", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache"}


def seed_small(seed: int = 7, **kwargs):
    return seed_demo(env_name="testing", phone_key=current_app.config["PHONE_HASH_KEY"], seed=seed, size=SMALL,
                     **kwargs)


def city_digest() -> str:
    """Names and codes of everything seeded, independent of ids and insertion order."""
    parent = aliased(Region)
    regions = db.session.execute(
        sa.select(Region.code, Region.name, Region.level, parent.code).outerjoin(parent, Region.parent)).all()
    org_parent, paired = aliased(Organization), aliased(Region)
    orgs = db.session.execute(
        sa.select(Organization.code, Organization.name, Organization.kind, org_parent.code, paired.code)
        .outerjoin(org_parent, Organization.parent).outerjoin(paired, Organization.paired_community)).all()
    branch, community, grid = aliased(Organization), aliased(Region), aliased(Region)
    members = db.session.execute(
        sa.select(Member.name, Member.phone_masked, branch.code, community.code, grid.code)
        .join(branch, Member.branch).join(community, Member.community).outerjoin(grid, Member.grid)).all()
    text = repr([sorted(map(tuple, rows), key=repr) for rows in (regions, orgs, members)])
    return hashlib.sha256(text.encode()).hexdigest()


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def run_cli(app, tmp_path, *args):
    app.instance_path = str(tmp_path)  # keep the test's accounts file out of the real instance folder
    return app.test_cli_runner().invoke(args=["demo", *args])


# --- shape --------------------------------------------------------------------------------------------

def test_the_territory_is_a_city_with_all_eleven_districts_and_each_level_under_the_one_above(app):
    seed_small()
    regions = db.session.scalars(sa.select(Region)).all()
    by_id = {r.id: r for r in regions}
    levels = list(RegionLevel)
    assert sorted(r.name for r in regions if r.level is RegionLevel.DISTRICT) == sorted(n for _, n, *_ in DISTRICTS)
    for region in regions:
        if region.level is RegionLevel.CITY:
            assert region.parent_id is None and region.name == "济宁市"
        else:
            assert by_id[region.parent_id].level == levels[levels.index(region.level) - 1]
            assert region.path == f"{by_id[region.parent_id].path}{region.id}/"


def test_communities_have_two_to_five_grids_named_by_number(app):
    seed_small()
    communities = db.session.scalars(sa.select(Region).where(Region.level == RegionLevel.COMMUNITY)).all()
    assert len(communities) == SMALL.communities
    for community in communities:
        grids = db.session.scalars(
            sa.select(Region).where(Region.parent_id == community.id).order_by(Region.code)).all()
        assert 2 <= len(grids) <= 5
        assert all(g.level is RegionLevel.GRID and g.name.endswith("网格") for g in grids)
        assert grids[0].name.endswith("一网格")


def test_departments_have_two_to_four_branches_and_a_paired_community(app):
    seed_small()
    departments = db.session.scalars(sa.select(Organization).where(Organization.kind == OrgKind.DEPARTMENT)).all()
    assert len(departments) == SMALL.departments
    for department in departments:
        assert department.parent_id is None and department.name.endswith("党委")
        assert department.paired_community.level is RegionLevel.COMMUNITY
        assert pairing_history(department) == [(department.paired_community_id, ENROLLED_SINCE, None)]
        branches = db.session.scalars(sa.select(Organization).where(Organization.parent_id == department.id)).all()
        assert 2 <= len(branches) <= 4
        assert all(b.kind is OrgKind.BRANCH and b.name.endswith("党支部") for b in branches)


def test_every_member_is_in_a_branch_and_lives_in_a_community_whose_grid_they_are_in(app):
    seed_small()
    members = db.session.scalars(sa.select(Member)).all()
    assert len(members) == SMALL.members
    for member in members:
        assert member.branch.kind is OrgKind.BRANCH
        assert member.community.level is RegionLevel.COMMUNITY
        assert member.grid is None or member.grid.parent_id == member.community_id
        assert [(a.branch_id, a.community_id, a.grid_id, a.valid_to) for a in member.affiliations] == [
            (member.branch_id, member.community_id, member.grid_id, None)]
    assert sum(m.grid is not None for m in members) > len(members) // 2


def test_member_phones_are_unique_valid_mobiles_stored_only_hashed_and_masked(app):
    city = seed_small()
    key = current_app.config["PHONE_HASH_KEY"]
    assert len(set(city.phones.values())) == SMALL.members
    for member in city.members:
        phone = city.phones[member.id]
        assert normalize_phone(phone) == phone
        assert (member.phone_hash, member.phone_masked) == (hash_phone(phone, key), mask_phone(phone))
    assert count(Member, Member.phone_hash.in_([city.phones[m.id] for m in city.members])) == 0


def test_names_favour_common_surnames_and_include_rare_characters_and_dotted_names():
    rng = random.Random(1)
    names = [person_name(rng) for _ in range(5000)]
    surnames = Counter(name[0] for name in names if "·" not in name)
    assert {s for s, _ in surnames.most_common(3)} <= {"王", "李", "张", "刘"}
    assert any(ord(c) > 0xFFFF for name in names for c in name)
    assert any("·" in name for name in names)
    assert all(2 <= len(name) <= 12 for name in names)


# --- reproducibility -----------------------------------------------------------------------------------

def test_the_same_seed_builds_the_same_city(app):
    seed_small(seed=11)
    first = city_digest()
    reset_database()
    seed_small(seed=11)
    assert city_digest() == first


def test_another_seed_builds_another_city(app):
    seed_small(seed=11)
    first = city_digest()
    reset_database()
    seed_small(seed=12)
    assert city_digest() != first


# --- refusals -----------------------------------------------------------------------------------------

def test_seeding_over_existing_regions_is_refused_and_only_if_empty_does_nothing(app):
    seed_small()
    before = count(Member)
    assert seed_small(only_if_empty=True) is None
    with pytest.raises(Exception, match="演示数据只能写入空库"):
        seed_small()
    assert count(Member) == before


def test_production_refuses_to_seed_even_an_empty_database(app):
    with pytest.raises(Exception, match="生产环境") as raised:
        seed_demo(env_name="production", phone_key="k", size=SMALL)
    assert raised.value.code == "demo_refused_in_production"
    assert count(Region) == 0


# --- accounts -----------------------------------------------------------------------------------------

def test_demo_accounts_have_one_grant_each_all_scoped_around_demo_member_one(app):
    city = seed_small()
    first = city.wechat_members[0]
    grants = {u: (g.role, g.scope_id) for u, g in db.session.execute(
        sa.select(User.username, RoleGrant).join(RoleGrant.user))}
    department_id = first.branch.department_id
    assert grants == {
        "demo-admin": (Role.ADMIN, None),
        "demo-secretary": (Role.BRANCH_SECRETARY, first.branch_id),
        "demo-community": (Role.COMMUNITY_ADMIN, first.community_id),
        "demo-hr": (Role.HR, department_id),
        "demo-orgadmin": (Role.ORG_ADMIN, department_id),
    }


def test_demo_member_one_signs_in_with_a_dev_wechat_code_and_sees_itself(app, client):
    city = seed_small()
    body = client.post("/api/v1/auth/wechat", json={"code": "dev:demo-member-1"}).get_json()
    assert body["data"]["needs_binding"] is False
    assert body["data"]["member"]["name"] == city.wechat_members[0].name
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['data']['access_token']}"}).get_json()
    assert me["data"]["member"]["id"] == city.wechat_members[0].id


def test_a_dev_login_tried_before_seeding_is_bound_by_the_seed(app, client):
    client.post("/api/v1/auth/wechat", json={"code": "dev:demo-member-1"})
    city = seed_small()
    body = client.post("/api/v1/auth/wechat", json={"code": "dev:demo-member-1"}).get_json()
    assert body["data"]["member"]["id"] == city.wechat_members[0].id


def test_the_admin_signs_in_with_the_generated_password(app, client):
    city = seed_small()
    admin = city.accounts[0]
    response = client.post("/api/v1/auth/login", json={"username": admin.username, "password": admin.password})
    assert response.status_code == 200, response.get_json()


# --- the flask demo commands --------------------------------------------------------------------------

def test_cli_seed_writes_a_private_accounts_file_and_if_empty_then_does_nothing(app, tmp_path):
    result = run_cli(app, tmp_path, "seed", "--seed", "3", *SMALL_ARGS)
    assert result.exit_code == 0, result.output
    path = tmp_path / "demo-accounts.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text(encoding="utf-8"))
    assert [a["username"] for a in document["accounts"]] == [
        "demo-admin", "demo-secretary", "demo-community", "demo-hr", "demo-orgadmin"]
    assert all(a["password"] in result.output for a in document["accounts"])
    members = count(Member)

    again = run_cli(app, tmp_path, "seed", "--if-empty", *SMALL_ARGS)
    assert again.exit_code == 0 and "nothing seeded" in again.output
    assert count(Member) == members == SMALL.members
    assert json.loads(path.read_text(encoding="utf-8")) == document

    refused = run_cli(app, tmp_path, "seed", *SMALL_ARGS)
    assert refused.exit_code != 0 and "demo_database_not_empty" in refused.output


def test_cli_seed_refuses_in_production_with_a_clear_error(app, tmp_path):
    app.config["ENV_NAME"] = "production"
    result = run_cli(app, tmp_path, "seed", "--if-empty", *SMALL_ARGS)
    assert result.exit_code != 0
    assert "生产环境禁止写入演示数据" in result.output
    assert not (tmp_path / "demo-accounts.json").exists()


def test_demo_passwords_are_new_on_every_seed_and_appear_nowhere_in_the_source_tree(app, tmp_path):
    run_cli(app, tmp_path, "seed", "--seed", "5", *SMALL_ARGS)
    first = json.loads((tmp_path / "demo-accounts.json").read_text(encoding="utf-8"))["accounts"]
    reset_database()
    run_cli(app, tmp_path, "seed", "--seed", "5", *SMALL_ARGS)
    second = json.loads((tmp_path / "demo-accounts.json").read_text(encoding="utf-8"))["accounts"]
    passwords = {a["password"] for a in first + second}
    assert len(passwords) == 10
    for path in SOURCE_ROOT.rglob("*"):
        if path.is_file() and not NOT_SOURCE.intersection(path.relative_to(SOURCE_ROOT).parts):
            content = path.read_bytes()
            assert not [p for p in passwords if p.encode() in content], path


def test_cli_info_prints_urls_accounts_and_how_to_sign_in(app, tmp_path):
    run_cli(app, tmp_path, "seed", *SMALL_ARGS)
    document = json.loads((tmp_path / "demo-accounts.json").read_text(encoding="utf-8"))
    output = run_cli(app, tmp_path, "info", "--port", "5123").output
    for url in ("/api/docs", "/healthz", "/readyz", "/api/v1/auth/login", "/api/v1/auth/wechat", "/api/v1/me"):
        assert f"http://127.0.0.1:5123{url}" in output
    assert '"code": "dev:demo-member-1"' in output
    assert all(a["username"] in output and a["password"] in output for a in document["accounts"])


def test_cli_info_without_a_seed_says_how_to_seed(app, tmp_path):
    output = run_cli(app, tmp_path, "info").output
    assert "http://127.0.0.1:5000/api/docs" in output and "flask demo seed" in output


def test_the_demo_shop_offers_two_items_in_every_community_and_one_city_wide(app, client):
    city = seed_small()
    per_region = Counter(db.session.scalars(sa.select(MarketItem.region_id)))
    assert {c.id: per_region[c.id] for c in city.communities} == {c.id: 2 for c in city.communities}
    root = db.session.scalar(sa.select(Region.id).where(Region.level == RegionLevel.CITY))
    assert per_region[root] == 1 and sum(per_region.values()) == 2 * len(city.communities) + 1
    token = client.post("/api/v1/auth/wechat", json={"code": "dev:demo-member-1"}).get_json()["data"]["access_token"]
    items = client.get("/api/v1/shop/items", headers={"Authorization": f"Bearer {token}"}).get_json()["data"]
    assert sorted(item["name"] for item in items["items"]) == sorted(
        ["洗衣液（2 kg）", "义剪服务（一次）", "红色教育基地参观券"])


def test_demo_members_earned_enough_to_order_from_the_demo_shop(app):
    city = seed_small()
    cheapest = db.session.scalar(sa.select(sa.func.min(MarketItem.price)))
    can_afford = [m for m in city.members if balance_of(m.id) >= cheapest]
    assert len(can_afford) >= len(city.members) // 4
