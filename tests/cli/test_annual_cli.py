"""``flask annual settle --year`` and ``flask export annual``: the operator's commands write the same rows
as the API, audit each export, and refuse a second settlement."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa
from python_calamine import CalamineWorkbook

from points_service.db import db
from points_service.models import AnnualSettlement, AuditEntry, SubjectType
from tests.factories import auth_header, make_world
from tests.factories.annual import YEAR, reported, score


@pytest.fixture
def world(app):
    world = make_world()
    for name, points in (("alice", 91), ("bob", 77), ("carol", 12)):
        score(world, world[name], points)
    score(world, world["education"], 40, subject_type=SubjectType.ORGANIZATION)
    reported(world["alice"], world["bob"])
    return world


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_settle_then_a_second_settle_is_refused(app, world):
    first = invoke(app, "annual", "settle", "--year", str(YEAR))
    assert first.exit_code == 0, first.output
    assert f"settled {YEAR}: members=3 organizations=2" in first.output
    second = invoke(app, "annual", "settle", "--year", str(YEAR))
    assert second.exit_code != 0 and "already_settled" in second.output
    settlement = db.session.scalar(sa.select(AnnualSettlement))
    assert settlement.settled_by_id is None


def test_a_year_that_has_not_ended_is_refused(app, world):
    result = invoke(app, "annual", "settle", "--year", "2026")
    assert result.exit_code != 0 and "year_not_ended" in result.output


@pytest.mark.parametrize("subject", ["member", "organization"])
def test_the_cli_csv_has_the_same_rows_as_the_api(app, client, world, tmp_path, subject):
    assert invoke(app, "annual", "settle", "--year", str(YEAR)).exit_code == 0
    out = tmp_path / "scores.csv"
    result = invoke(app, "export", "annual", "--year", str(YEAR), "--subject", subject, "--format", "csv",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    api = client.get(f"/api/v1/annual/{YEAR}/scores?format=csv&subject={subject}",
                     headers=auth_header(world["users"]["admin"])).get_data()
    assert out.read_bytes() == api
    rows = list(csv.reader(io.StringIO(api.decode("utf-8-sig"))))
    assert f"wrote {len(rows) - 1} rows" in result.output


def test_the_cli_xlsx_has_the_same_rows_as_the_api_csv(app, client, world, tmp_path):
    invoke(app, "annual", "settle", "--year", str(YEAR))
    out = tmp_path / "scores.xlsx"
    assert invoke(app, "export", "annual", "--year", str(YEAR), "--out", str(out)).exit_code == 0
    sheet = CalamineWorkbook.from_path(str(out)).get_sheet_by_index(0).to_python()
    api = client.get(f"/api/v1/annual/{YEAR}/scores?format=csv", headers=auth_header(world["users"]["admin"]))
    rows = list(csv.reader(io.StringIO(api.get_data().decode("utf-8-sig"))))
    as_text = [[str(int(c)) if isinstance(c, float) and c.is_integer() else str(c) for c in r[:4]] for r in sheet]
    assert as_text == [r[:4] for r in rows]


def test_each_cli_export_is_audited_and_an_unsettled_year_fails(app, world, tmp_path):
    failed = invoke(app, "export", "annual", "--year", str(YEAR), "--out", str(tmp_path / "x.xlsx"))
    assert failed.exit_code != 0 and "not_settled" in failed.output
    invoke(app, "annual", "settle", "--year", str(YEAR))
    invoke(app, "export", "annual", "--year", str(YEAR), "--format", "csv", "--out", str(tmp_path / "x.csv"))
    audits = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "annual.export")).all()
    assert [(a.actor_id, a.detail) for a in audits] == [
        (None, {"year": YEAR, "subject": "member", "scope": "all", "format": "csv", "rows": 3, "via": "cli"})]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_into_a_folder_that_does_not_exist_fails_with_a_message_and_audits_nothing(app, world, tmp_path, fmt):
    assert invoke(app, "annual", "settle", "--year", str(YEAR)).exit_code == 0
    out = tmp_path / "no-such-folder" / f"scores.{fmt}"

    result = invoke(app, "export", "annual", "--year", str(YEAR), "--format", fmt, "--out", str(out))

    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exception
    assert "no-such-folder" in result.output and "does not exist" in result.output
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "annual.export")) == 0


def failing_midway(monkeypatch, error: Exception) -> None:
    """The rows fail after the first has been written (a database error mid-export, a full disk)."""
    from points_service.domain.exports import files

    real = files.annual_rows

    def rows(export):
        iterator = iter(real(export))
        yield next(iterator)
        raise error

    monkeypatch.setattr(files, "annual_rows", rows)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("error", [sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection")),
                                   OSError(28, "No space left on device")], ids=["database", "disk"])
def test_an_export_failing_midway_leaves_neither_a_file_nor_a_temporary_one(app, world, tmp_path, monkeypatch,
                                                                            fmt, error):
    invoke(app, "annual", "settle", "--year", str(YEAR))
    failing_midway(monkeypatch, error)
    out = tmp_path / f"scores.{fmt}"
    result = invoke(app, "export", "annual", "--year", str(YEAR), "--format", fmt, "--out", str(out))
    assert result.exit_code == 1 and f"export failed, nothing written to {out}" in result.output
    assert list(tmp_path.iterdir()) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "annual.export")) == 0


def test_a_failed_export_leaves_an_earlier_file_at_the_target_as_it_was(app, world, tmp_path, monkeypatch):
    invoke(app, "annual", "settle", "--year", str(YEAR))
    out = tmp_path / "scores.csv"
    out.write_bytes(b"last year's export")
    failing_midway(monkeypatch, OSError(28, "No space left on device"))
    assert invoke(app, "export", "annual", "--year", str(YEAR), "--format", "csv", "--out", str(out)).exit_code == 1
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"] and out.read_bytes() == b"last year's export"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_successful_export_leaves_exactly_the_complete_file(app, world, tmp_path, fmt):
    invoke(app, "annual", "settle", "--year", str(YEAR))
    out = tmp_path / f"scores.{fmt}"
    out.write_bytes(b"replaced")
    assert invoke(app, "export", "annual", "--year", str(YEAR), "--format", fmt, "--out", str(out)).exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    if fmt == "csv":
        assert len(out.read_bytes().decode("utf-8-sig").splitlines()) == 1 + 3
    else:
        assert len(CalamineWorkbook.from_path(str(out)).get_sheet_by_index(0).to_python()) == 1 + 3


def test_an_export_whose_audit_cannot_be_committed_leaves_no_file(app, world, tmp_path, monkeypatch):
    invoke(app, "annual", "settle", "--year", str(YEAR))

    def refused():
        raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(db.session, "commit", refused)
    out = tmp_path / "scores.csv"
    result = invoke(app, "export", "annual", "--year", str(YEAR), "--format", "csv", "--out", str(out))
    assert result.exit_code == 1 and "export failed, nothing written" in result.output
    assert list(tmp_path.iterdir()) == []
