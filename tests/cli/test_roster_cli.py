"""``flask roster import KIND PATH [--dry-run]``: the operator's import, its report and exit codes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.models import AuditEntry, Member
from tests.factories import make_world
from tests.roster_files import csv_bytes

GOOD_ROW = ["赵新", "13800138000", "财政局第一党支部", "北门社区", "北门一网格"]
BAD_ROW = ["钱多", "13900139000", "不存在的支部", "北门社区", ""]


@pytest.fixture
def world(app):
    return make_world()


def roster_import(app, tmp_path, *rows, args=(), filename="members.csv"):
    path = tmp_path / filename
    path.write_bytes(csv_bytes("members", *rows))
    return app.test_cli_runner().invoke(args=["roster", "import", "members", str(path), *args])


def member_count() -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Member))


def test_a_valid_file_is_imported_with_exit_code_zero(app, world, tmp_path):
    before = member_count()
    result = roster_import(app, tmp_path, GOOD_ROW)
    assert result.exit_code == 0, result.output
    assert "members: created 1, updated 0, unchanged 0" in result.output
    assert member_count() == before + 1


def test_an_invalid_file_exits_non_zero_printing_each_bad_row_and_writes_nothing(app, world, tmp_path):
    before = member_count()
    result = roster_import(app, tmp_path, GOOD_ROW, BAD_ROW)
    assert result.exit_code == 1
    assert "第 3 行 [所在支部]: 未找到党支部“不存在的支部”" in result.output
    assert member_count() == before


def test_a_dry_run_exits_zero_and_writes_nothing(app, world, tmp_path):
    before = member_count()
    result = roster_import(app, tmp_path, GOOD_ROW, args=["--dry-run"])
    assert result.exit_code == 0 and "dry run: nothing written" in result.output
    assert member_count() == before


def test_an_unsupported_file_exits_non_zero_with_the_reason(app, world, tmp_path):
    result = roster_import(app, tmp_path, GOOD_ROW, filename="members.txt")
    assert result.exit_code == 1 and "仅支持 .xlsx 或 .csv" in result.output


def test_the_operator_import_is_audited_without_a_console_user(app, world, tmp_path):
    roster_import(app, tmp_path, GOOD_ROW)
    db.session.expire_all()
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "roster.import"))
    assert entry.actor_id is None and entry.detail["created"] == 1
