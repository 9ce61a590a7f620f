"""The members file's status columns: deactivations and reactivations with row-level errors, all or nothing."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa
from flask import current_app

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.boards.audit import compare_boards
from points_service.domain.lifecycle.status import deactivate_member
from points_service.domain.periods import LOCAL_TZ
from points_service.domain.roster.importing import ImportInvalid, import_roster
from points_service.models import (
    Affiliation,
    AuditEntry,
    DeactivationReason,
    MarketOrder,
    Member,
    MemberStatusChange,
    OrderState,
    ScheduledMemberChange,
    User,
)
from tests.factories import make_member, make_world
from tests.factories.boards import entry
from tests.roster_files import csv_bytes

HEADER = ["姓名", "手机号", "所在支部", "居住社区", "网格", "状态", "状态生效日期", "状态说明"]
PHONE = "13912340001"


@pytest.fixture
def world(app):
    world = make_world()
    world["dan"] = make_member(world["fin1"], world["north"], name="赵丹", phone=PHONE)
    db.session.execute(sa.update(Affiliation).values(valid_from=datetime(2025, 1, 1, tzinfo=LOCAL_TZ)))
    entry(world["dan"], 2, datetime(2026, 11, 5, 9, tzinfo=LOCAL_TZ))
    db.session.commit()
    world["admin"] = principal_for(world["users"]["admin"])
    return world


def run(world, *rows, actor=None):
    content = csv_bytes("members", *rows, header=HEADER)
    return import_roster(actor or world["admin"], "members", content, "members.csv",
                         phone_key=current_app.config["PHONE_HASH_KEY"])


def dan_row(world, status, on="2026-11-01", reason="到龄退休"):
    return ["赵丹", PHONE, world["fin1"].name, world["north"].name, "", status, on, reason]


def test_a_status_column_deactivates_and_then_reactivates_a_member(world):
    report = run(world, dan_row(world, "退休"))
    assert report.updated == 1
    dan = db.session.get(Member, world["dan"].id)
    assert dan.is_active is False and dan.inactive_since == datetime(2026, 11, 1, tzinfo=LOCAL_TZ)
    assert compare_boards() == []
    run(world, dan_row(world, "在册", on="", reason="返聘"))
    assert db.session.get(Member, world["dan"].id).is_active is True
    assert [c.kind for c in db.session.scalars(sa.select(MemberStatusChange))] == ["deactivate", "reactivate"]
    assert compare_boards() == []


def test_a_file_without_the_status_columns_still_imports(world):
    content = csv_bytes("members", ["赵丹", PHONE, world["fin1"].name, world["north"].name, ""])
    report = import_roster(world["admin"], "members", content, "members.csv",
                           phone_key=current_app.config["PHONE_HASH_KEY"])
    assert report.unchanged == 1


def test_bad_status_rows_are_reported_by_row_and_nothing_is_written(world):
    rows = [dan_row(world, "开除"), ["新人", "13912340002", world["fin1"].name, world["north"].name, "", "离职",
                                     "2026-11-01", ""], dan_row(world, "退休", on="2099-01-01")]
    with pytest.raises(ImportInvalid) as refused:
        run(world, *rows)
    errors = {(e["row"], e["field"]) for e in refused.value.data["errors"]}
    assert {(2, "状态"), (3, "状态")} <= errors
    assert db.session.get(Member, world["dan"].id).is_active is True


def test_a_reactivation_that_also_moves_the_member_is_a_row_error_and_nothing_is_written(world):
    run(world, dan_row(world, "退休"))
    moved = ["赵丹", PHONE, world["edu1"].name, world["south"].name, "", "在册", "", "返聘"]
    with pytest.raises(ImportInvalid) as refused:
        run(world, moved)
    assert [(e["row"], e["field"]) for e in refused.value.data["errors"]] == [(2, "状态")]
    dan = db.session.get(Member, world["dan"].id)
    assert (dan.is_active, dan.branch_id) == (False, world["fin1"].id)
    assert compare_boards() == []  # the head counts too: fin1 not counted off twice, edu1 not twice on


@pytest.mark.parametrize("on", ["0001-01-01", "9999-12-31"])
def test_a_status_date_outside_the_years_is_a_row_error_not_a_failure(world, on):
    with pytest.raises(ImportInvalid) as refused:
        run(world, dan_row(world, "退休", on=on))
    assert [(e["row"], e["field"]) for e in refused.value.data["errors"]] == [(2, "状态生效日期")]
    assert db.session.get(Member, world["dan"].id).is_active is True


def test_a_row_moving_a_member_whose_change_waits_is_a_row_error_and_a_row_keeping_him_is_not(world):
    run(world, dan_row(world, "退休", on="2099-01-01"))
    moved = ["赵丹", PHONE, world["fin2"].name, world["north"].name, "", "", "", ""]
    with pytest.raises(ImportInvalid) as refused:
        run(world, moved)
    assert [(e["row"], e["field"]) for e in refused.value.data["errors"]] == [(2, "所在支部")]
    assert db.session.get(Member, world["dan"].id).branch_id == world["fin1"].id
    assert run(world, dan_row(world, "", on="", reason="")).unchanged == 1


def test_a_deactivation_dated_after_today_is_scheduled_and_changes_nothing_yet(world):
    report = run(world, dan_row(world, "退休", on="2099-01-01"))
    assert (report.scheduled, report.updated, report.unchanged) == (1, 0, 0)
    dan = db.session.get(Member, world["dan"].id)
    assert dan.is_active is True and db.session.scalars(sa.select(MemberStatusChange)).all() == []
    (change,) = db.session.scalars(sa.select(ScheduledMemberChange)).all()
    assert (change.member_id, change.kind, change.status, change.effective_on, change.reason_code, change.reason) == (
        dan.id, "deactivate", "scheduled", date(2099, 1, 1), "retired", "到龄退休")
    assert db.session.scalar(sa.select(AuditEntry.action).where(AuditEntry.action.like("member.schedule%"))) == \
        "member.schedule_deactivate"


def test_a_dry_run_counts_a_scheduled_deactivation_and_stores_nothing(world):
    content = csv_bytes("members", dan_row(world, "离职", on="2099-01-01"), header=HEADER)
    report = import_roster(world["admin"], "members", content, "members.csv", dry_run=True,
                           phone_key=current_app.config["PHONE_HASH_KEY"])
    assert report.scheduled == 1 and db.session.scalars(sa.select(ScheduledMemberChange)).all() == []


def test_a_member_whose_change_already_waits_is_a_row_error(world):
    run(world, dan_row(world, "退休", on="2099-01-01"))
    with pytest.raises(ImportInvalid) as refused:
        run(world, dan_row(world, "离职", on="2099-02-01"))
    assert [(e["row"], e["field"]) for e in refused.value.data["errors"]] == [(2, "状态生效日期")]
    assert len(db.session.scalars(sa.select(ScheduledMemberChange)).all()) == 1


BOARD_WRITES = ("INSERT INTO board_org_members ", "INSERT INTO board_scores ", "INSERT INTO board_buckets ",
                "INSERT INTO board_fine ", "UPDATE board_scores ")


def test_a_files_deactivations_take_the_items_of_the_orders_they_cancel_before_the_boards_rows(world, statements):
    """As a deactivation through the API does: the 积分超市 item's row, then the organizations' board rows, which
    the file writes once, summed over its rows, at its end (its deactivations and transfers alike). The other
    way round the two could deadlock."""
    order = dan_orders_one_item(world)
    mover = make_member(world["fin1"], world["north"], name="钱调", phone="13912340002")
    db.session.execute(sa.update(Affiliation).where(Affiliation.member_id == mover.id)
                       .values(valid_from=datetime(2025, 1, 1, tzinfo=LOCAL_TZ)))
    entry(mover, 3, datetime(2026, 11, 6, 9, tzinfo=LOCAL_TZ))
    db.session.commit()
    statements.clear()

    run(world, dan_row(world, "退休"), ["钱调", "13912340002", world["edu1"].name, world["north"].name, "", "", "", ""])

    written = [s.lstrip().split("(")[0].split(" SET")[0].strip() + " " for s in statements]
    item_update = written.index("UPDATE market_items ")
    assert "INSERT INTO board_org_members " not in written[:item_update]
    assert written.count("INSERT INTO board_org_members ") == 1  # the deactivation's and the transfer's, summed
    assert db.session.get(MarketOrder, order.id).state is OrderState.CANCELLED
    assert compare_boards() == []


def test_a_deactivation_through_the_api_takes_the_items_before_the_boards_rows(world, statements):
    """The order a roster import takes them in (above)."""
    order = dan_orders_one_item(world)
    statements.clear()

    deactivate_member(world["admin"], world["dan"].id, DeactivationReason.RETIRED, "到龄退休", date(2026, 11, 1))

    written = [s.lstrip().split("(")[0].split(" SET")[0].strip() + " " for s in statements]
    item_update = written.index("UPDATE market_items ")
    assert not [s for s in written[:item_update] if s.startswith(BOARD_WRITES)]
    assert [s for s in written[item_update:] if s.startswith(BOARD_WRITES)]  # his rows left the boards after
    assert db.session.get(MarketOrder, order.id).state is OrderState.CANCELLED
    assert compare_boards() == []


def dan_orders_one_item(world):
    from decimal import Decimal

    from points_service.domain.market.orders import OrderRequest, place_order
    from tests.factories.market import fund, make_item

    item = make_item(world["north"], price=Decimal(1), stock=3)
    dan_user = User(member_id=world["dan"].id, display_name="赵丹")
    db.session.add(dan_user)
    db.session.commit()
    fund(world["dan"], 5)
    return place_order(principal_for(dan_user), OrderRequest(item.id, 1))
