"""The roster import use case: all rows valid or nothing written, re-imports update, transfers keep history."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.boards.audit import compare_boards
from points_service.domain.boards.maintain import bumps_deferred, count_member, savepoint_with_bumps
from points_service.domain.errors import Conflict, Forbidden
from points_service.domain.ledger.credit import award
from points_service.domain.ledger.totals import compare_totals
from points_service.domain.phones import hash_phone
from points_service.domain.roster import importing as roster_import
from points_service.domain.roster.importing import ImportInvalid, import_roster
from points_service.models import (
    Affiliation,
    AuditEntry,
    BoardOrgMembers,
    BoardScore,
    Member,
    Organization,
    OrgKind,
    Region,
    RegionLevel,
    Role,
    SubjectType,
)
from tests.factories import make_branch, make_member, make_region, make_user, make_world, pairing_history
from tests.factories.ledger import member_fact
from tests.roster_files import csv_bytes, xlsx_bytes

TEMPLATES = Path(__file__).resolve().parents[3] / "docs" / "templates"


@pytest.fixture
def world(app):
    return make_world()


def run(world, kind, content, *, as_user="admin", filename="file.csv", dry_run=False):
    from flask import current_app

    actor = principal_for(world["users"][as_user])
    return import_roster(actor, kind, content, filename, phone_key=current_app.config["PHONE_HASH_KEY"],
                         dry_run=dry_run)


def refused(world, kind, content, **kwargs) -> list[dict]:
    with pytest.raises(ImportInvalid) as caught:
        run(world, kind, content, **kwargs)
    db.session.rollback()
    return caught.value.data["errors"]


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def member_by_phone(app, phone: str) -> Member | None:
    digest = hash_phone(phone, app.config["PHONE_HASH_KEY"])
    return db.session.scalar(sa.select(Member).where(Member.phone_hash == digest))


def new_member(name="赵新", phone="13800138000", branch="财政局第一党支部", community="北门社区", grid=""):
    return [name, phone, branch, community, grid]


# ---- members -------------------------------------------------------------------------------------------

def test_members_are_created_with_the_phone_only_hashed_and_masked(app, world):
    report = run(world, "members", csv_bytes("members", new_member(grid="北门一网格")))
    assert (report.created, report.updated, report.unchanged, report.errors) == (1, 0, 0, [])
    member = member_by_phone(app, "13800138000")
    assert member.phone_masked == "138****8000" and "13800138000" not in member.phone_hash
    assert (member.branch, member.community, member.grid) == (world["fin1"], world["north"], world["north_grid"])
    assert len(member.affiliations) == 1


def test_one_bad_row_refuses_the_whole_file_and_writes_nothing(app, world):
    before = count(Member)
    content = csv_bytes("members", new_member(), new_member(phone="13900139000", branch="财政局第九党支部"),
                        new_member(phone="13700137000"))
    errors = refused(world, "members", content)
    assert errors == [{"row": 3, "field": "所在支部", "message": "未找到党支部“财政局第九党支部”"}]
    assert count(Member) == before and member_by_phone(app, "13800138000") is None


def test_a_dry_run_reports_what_would_happen_and_writes_nothing(app, world):
    make_member(world["fin1"], world["north"], name="孙调", phone="13600136000")
    db.session.commit()
    content = csv_bytes("members", new_member(), ["孙调改", "13600136000", "教育局第一党支部", "南门社区", ""])
    before = (count(Member), count(Affiliation))
    report = run(world, "members", content, dry_run=True)
    assert (report.created, report.updated, report.dry_run) == (1, 1, True)
    db.session.expire_all()
    assert (count(Member), count(Affiliation)) == before
    assert member_by_phone(app, "13600136000").name == "孙调" and member_by_phone(app, "13800138000") is None


def test_a_phone_typed_as_a_number_with_full_width_and_country_code_variants_match_one_member(app, world):
    run(world, "members", xlsx_bytes("members", new_member(phone=13800138000)), filename="名单.xlsx")
    report = run(world, "members", csv_bytes("members", new_member(phone="＋86 １３８００１３８０００")))
    assert (report.created, report.unchanged) == (0, 1)
    assert member_by_phone(app, "13800138000").name == "赵新"


@pytest.mark.parametrize("name", ["李·建国", "王𠮷"])
def test_names_are_stored_exactly(app, world, name):
    run(world, "members", csv_bytes("members", new_member(name=name)))
    db.session.expire_all()
    assert member_by_phone(app, "13800138000").name == name


def test_a_control_character_in_a_name_refuses_the_row(world):
    errors = refused(world, "members", csv_bytes("members", new_member(name="赵\u202e新")))
    assert errors[0]["row"] == 2 and errors[0]["field"] == "姓名"


def test_unknown_and_ambiguous_places_are_named_in_the_reason(world):
    make_region(RegionLevel.COMMUNITY, world["street"], name="北门社区")  # a second community of that name
    db.session.commit()
    content = csv_bytes("members", new_member(), new_member(phone="13900139000", community="西门社区"),
                        new_member(phone="13700137000", community=world["south"].code, grid="北门一网格"))
    errors = refused(world, "members", content)
    assert [(e["row"], e["field"], e["message"]) for e in errors] == [
        (2, "居住社区", "社区名称“北门社区”对应 2 个社区，请改填编码"),
        (3, "居住社区", "未找到社区“西门社区”"),
        (4, "网格", "未找到社区“南门社区”的网格“北门一网格”"),
    ]


def test_branch_community_and_grid_may_be_given_by_code(app, world):
    row = new_member(branch=world["edu1"].code, community=world["south"].code, grid=world["south_grid"].code)
    run(world, "members", csv_bytes("members", row))
    member = member_by_phone(app, "13800138000")
    assert (member.branch, member.community, member.grid) == (world["edu1"], world["south"], world["south_grid"])


def test_hr_imports_into_its_own_department_but_each_other_department_row_is_refused(app, world):
    ok = csv_bytes("members", new_member(branch="财政局第二党支部"))
    assert run(world, "members", ok, as_user="hr").created == 1
    content = csv_bytes("members", new_member(phone="13900139000"),
                        new_member(phone="13700137000", branch="教育局第一党支部"))
    errors = refused(world, "members", content, as_user="hr")
    assert errors == [{"row": 3, "field": "所在支部",
                       "message": "无权导入到支部“教育局第一党支部”：不在您管理的组织范围内"}]
    assert member_by_phone(app, "13900139000") is None


def test_a_branch_name_shared_across_departments_means_the_one_in_hr_scope_but_is_ambiguous_for_admins(app, world):
    ours, _theirs = make_branch(world["finance"], name="第一党支部"), make_branch(world["education"], name="第一党支部")
    db.session.commit()
    content = csv_bytes("members", new_member(branch="第一党支部"))
    assert run(world, "members", content, as_user="hr").created == 1
    assert member_by_phone(app, "13800138000").branch == ours
    errors = refused(world, "members", csv_bytes("members", new_member(phone="13900139000", branch="第一党支部")))
    assert errors[0]["message"] == "党支部名称“第一党支部”对应 2 个党支部，请改填编码"


@pytest.mark.parametrize("user, kind", [("hr", "regions"), ("hr", "organizations"), ("alice", "members"),
                                        ("secretary", "members"), ("community_admin", "members")])
def test_only_admins_import_structure_and_only_admins_and_hr_import_members(world, user, kind):
    with pytest.raises(Forbidden):
        run(world, kind, csv_bytes(kind, ["x"]), as_user=user)


def test_hr_cannot_take_over_a_member_of_another_department_by_his_phone_but_moves_its_own(world):
    theirs = make_member(world["edu1"], world["south"], name="钱教", phone="13600136001")
    ours = make_member(world["fin1"], world["north"], name="孙财", phone="13600136002")
    db.session.commit()
    takeover = csv_bytes("members", ["被改名", "13600136001", "财政局第一党支部", "北门社区", ""])
    errors = refused(world, "members", takeover, as_user="hr")
    assert [(e["row"], e["field"]) for e in errors] == [(2, "手机号")]
    db.session.expire_all()
    assert (db.session.get(Member, theirs.id).name, db.session.get(Member, theirs.id).branch_id) == (
        "钱教", world["edu1"].id)
    own = csv_bytes("members", ["孙财改", "13600136002", "财政局第二党支部", "北门社区", ""])
    assert run(world, "members", own, as_user="hr").updated == 1
    assert db.session.get(Member, ours.id).branch_id == world["fin2"].id


def test_reimporting_a_member_elsewhere_transfers_and_keeps_affiliation_history(world):
    member = make_member(world["fin1"], world["north"], world["north_grid"], name="孙调", phone="13600136000")
    db.session.commit()
    content = csv_bytes("members", ["孙调", "13600136000", "教育局第一党支部", "南门社区", "南门一网格"])
    report = run(world, "members", content)
    assert (report.created, report.updated) == (0, 1)
    history = db.session.scalars(sa.select(Affiliation).where(Affiliation.member_id == member.id)
                                 .order_by(Affiliation.id)).all()
    assert [(a.branch_id, a.valid_to is None) for a in history] == [(world["fin1"].id, False), (world["edu1"].id, True)]
    assert (member.branch, member.community, member.grid) == (world["edu1"], world["south"], world["south_grid"])


def test_reimporting_the_same_file_changes_nothing(world):
    content = csv_bytes("members", new_member())
    run(world, "members", content)
    report = run(world, "members", content)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)
    assert count(Affiliation) == 4  # three members of the world + the one imported, no transfer


def test_a_member_enrolled_elsewhere_between_checks_and_writes_makes_the_import_keep_nothing(app, world, monkeypatch):
    plan = roster_import._plan

    def plan_then_lose_a_race(*args):
        steps = plan(*args)
        make_member(world["fin2"], world["south"], name="抢先", phone="13800138000")
        db.session.commit()
        return steps

    monkeypatch.setattr(roster_import, "_plan", plan_then_lose_a_race)
    with pytest.raises(Conflict):
        run(world, "members", csv_bytes("members", new_member(phone="13900139000"), new_member()))
    assert member_by_phone(app, "13900139000") is None and member_by_phone(app, "13800138000").name == "抢先"


def test_each_import_is_audited_with_kind_counts_and_dry_run(world):
    run(world, "members", csv_bytes("members", new_member()), dry_run=True)
    refused(world, "members", csv_bytes("members", new_member(name="")))
    entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "roster.import")
                                 .order_by(AuditEntry.id)).all()
    assert [(e.result, e.target_id) for e in entries] == [("ok", "members"), ("invalid", "members")]
    assert entries[0].detail == {"kind": "members", "dry_run": True, "created": 1, "updated": 0,
                                 "scheduled": 0, "unchanged": 0, "errors": 0}
    assert entries[1].detail["errors"] == 1 and entries[0].actor_id == world["users"]["admin"].id


# ---- regions -------------------------------------------------------------------------------------------

def test_regions_may_name_parents_defined_further_down_the_same_file(world):
    content = csv_bytes("regions", ["G9", "新区一网格", "网格", "C9"], ["C9", "新区社区", "社区", "S9"],
                        ["S9", "新区街道", "街道", world["district"].code])
    assert run(world, "regions", content).created == 3
    grid = db.session.scalar(sa.select(Region).where(Region.code == "G9"))
    assert grid.parent.code == "C9" and grid.is_within(world["district"].path)


def test_reimporting_regions_renames_and_reports_unchanged_rows(world):
    content = csv_bytes("regions", [world["north"].code, "北门新社区", "社区", world["street"].code],
                        [world["south"].code, "南门社区", "社区", world["street"].code])
    report = run(world, "regions", content)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    assert world["north"].name == "北门新社区"


@pytest.mark.parametrize("row, field, message", [
    (["C9", "新社区", "社区", "NOPE"], "上级编码", "未找到上级区划“NOPE”"),
    (["C9", "新社区", "社区", "{district}"], "上级编码", "上级区划“{district}”是区县，社区的上级应为街道"),
    (["{north}", "北门社区", "街道", "{district}"], "层级", "区划编码“{north}”已存在且层级为社区，不能改为街道"),
    (["{north}", "北门社区", "社区", "S9"], "上级编码", "未找到上级区划“S9”"),
])
def test_region_rows_that_do_not_fit_the_tree_are_refused(world, row, field, message):
    codes = {"district": world["district"].code, "north": world["north"].code}
    errors = refused(world, "regions", csv_bytes("regions", [cell.format(**codes) for cell in row]))
    assert errors == [{"row": 2, "field": field, "message": message.format(**codes)}]


def test_an_import_cannot_move_an_existing_region_to_another_parent(world):
    other_street = make_region(RegionLevel.STREET, world["district"], code="S2")
    db.session.commit()
    row = [world["north"].code, "北门社区", "社区", other_street.code]
    errors = refused(world, "regions", csv_bytes("regions", row))
    assert errors[0]["field"] == "上级编码" and "不能更改上级" in errors[0]["message"]


# ---- organizations -------------------------------------------------------------------------------------

def test_a_department_and_its_branches_import_in_any_order_with_the_paired_community(world):
    content = csv_bytes("organizations", ["T-01", "市税务局第一党支部", "党支部", "T", ""],
                        ["T", "市税务局机关党委", "党委", "", "南门社区"])
    assert run(world, "organizations", content).created == 2
    branch = db.session.scalar(sa.select(Organization).where(Organization.code == "T-01"))
    assert branch.parent.kind is OrgKind.DEPARTMENT and branch.parent.paired_community == world["south"]
    assert branch.department_id == branch.parent.id
    [(community_id, _since, until)] = pairing_history(branch.parent)
    assert (community_id, until) == (world["south"].id, None) and pairing_history(branch) == []


def test_reimporting_an_organization_updates_its_name_and_pairing(world):
    finance = world["finance"]
    row = [finance.code, "市财政局党委", "党委", "", "南门社区"]
    report = run(world, "organizations", csv_bytes("organizations", row))
    assert report.updated == 1 and (finance.name, finance.paired_community) == ("市财政局党委", world["south"])
    [(north, _, closed), (south, opened, until)] = pairing_history(finance)
    assert (north, south, until) == (world["north"].id, world["south"].id, None) and closed == opened


def test_a_file_changing_only_the_pairing_updates_it_and_one_without_a_community_unpairs(world):
    finance = world["finance"]

    def row(paired: str) -> bytes:
        return csv_bytes("organizations", [finance.code, finance.name, "党委", "", paired])

    moved = run(world, "organizations", row("南门社区"))
    assert moved.updated == 1 and finance.paired_community == world["south"]
    unpaired = run(world, "organizations", row(""))
    assert unpaired.updated == 1 and finance.paired_community is None
    assert [until is None for _community, _since, until in pairing_history(finance)] == [False, False]


def test_a_new_pairing_from_a_file_moves_the_organizations_board_rows_with_it(world):
    award(member_fact(world["alice"], "member.micro_wish"))  # fin1's and finance's rollup rows
    db.session.commit()
    finance = world["finance"]
    run(world, "organizations", csv_bytes("organizations", [finance.code, finance.name, "党委", "", "南门社区"]))
    assert compare_boards() == []
    assert set(db.session.scalars(sa.select(BoardScore.community_id).where(
        BoardScore.subject_type == SubjectType.ORGANIZATION))) == {world["south"].id}


@pytest.mark.parametrize("row, field, message", [
    (["X-01", "某支部", "党支部", "NOPE", ""], "上级组织编码", "未找到上级组织“NOPE”"),
    (["X-01", "某支部", "党支部", "{fin1}", ""], "上级组织编码", "上级组织“{fin1}”不是部门党组织"),
    (["{fin1}", "财政局第一党支部", "党委", "", ""], "类型", "组织编码“{fin1}”已存在且为党支部，不能改为部门党组织"),
    (["X", "某局党委", "党委", "", "东门社区"], "结对社区", "未找到社区“东门社区”"),
])
def test_organization_rows_that_do_not_fit_the_tree_are_refused(world, row, field, message):
    codes = {"fin1": world["fin1"].code}
    errors = refused(world, "organizations", csv_bytes("organizations", [cell.format(**codes) for cell in row]))
    assert errors == [{"row": 2, "field": field, "message": message.format(**codes)}]


# ---- the shipped templates -----------------------------------------------------------------------------

def test_the_templates_import_cleanly_in_order(app):
    street = make_region(RegionLevel.STREET, make_region(RegionLevel.DISTRICT, make_region(RegionLevel.CITY)),
                         code="370811001", name="古槐街道")
    admin = principal_for(make_user((Role.ADMIN, None)))
    db.session.commit()
    for kind in ("regions", "organizations", "members"):
        import_roster(admin, kind, (TEMPLATES / f"{kind}.csv").read_bytes(), f"{kind}.csv",
                      phone_key=app.config["PHONE_HASH_KEY"])
    report = import_roster(admin, "members", (TEMPLATES / "members.xlsx").read_bytes(), "members.xlsx",
                           phone_key=app.config["PHONE_HASH_KEY"])
    assert (report.created, report.unchanged) == (0, 2)
    member = member_by_phone(app, "13900139000")
    assert member.name == "王𠮷" and member.grid.name == "北门第一网格" and member.community.is_within(street.path)


def test_an_import_writes_the_organizations_board_rows_and_head_counts_once_for_all_its_transfers(world, statements):
    """Thousands of transfers between a few branches: each organization row is written once, summed (updating
    it once per transfer in one transaction would grow with the square of the rows on PostgreSQL)."""
    movers = [make_member(world["fin1"], world["north"], world["north_grid"], name=f"调动{n}",
                          phone=f"1370000{n:04d}") for n in range(4)]
    db.session.commit()
    for member in movers:
        award(member_fact(member), at=utcnow())
    statements.clear()

    report = run(world, "members", csv_bytes("members", *[
        [f"调动{n}", f"1370000{n:04d}", "教育局第一党支部", "南门社区", ""] for n in range(4)],
        ["新党员", "13700009999", "财政局第一党支部", "北门社区", ""]))

    assert (report.updated, report.created) == (4, 1)
    writes = [s for s in statements if s.lstrip().startswith("INSERT INTO")]
    assert len([s for s in writes if "board_org_members" in s]) == 1
    assert len([s for s in writes if "board_scores" in s and "member_points" in s]) == 1  # the rollups
    assert compare_boards() == [] and compare_totals() == []


def head_count(org) -> int:
    return db.session.scalar(sa.select(BoardOrgMembers.members).where(BoardOrgMembers.organization_id == org.id))


def test_changes_deferred_by_a_block_that_fails_are_not_written_and_not_kept(world):
    before = head_count(world["fin1"])
    with pytest.raises(RuntimeError), bumps_deferred():
        count_member(world["fin1"].id, 5)
        raise RuntimeError("a step failed")
    count_member(world["fin1"].id, 1)  # written at once again, without the failed block's 5
    assert head_count(world["fin1"]) == before + 1


def test_a_savepoint_in_a_deferring_block_drops_its_own_changes_when_it_fails_and_keeps_the_others(world):
    before = head_count(world["fin1"])
    with bumps_deferred():
        count_member(world["fin1"].id, 1)
        with pytest.raises(RuntimeError), savepoint_with_bumps():
            count_member(world["fin1"].id, 5)
            raise RuntimeError("this change can no longer apply")
        with savepoint_with_bumps():
            count_member(world["fin1"].id, 2)
    assert head_count(world["fin1"]) == before + 3
