"""How long does a full roster upload that transfers every member take, and what do its two bulk measures save:
the members' locks in a few statements, and the organizations' board rows and head counts written once?

    .venv/bin/python bench/import_bench.py --members 5000 --rounds 2
    .venv/bin/python bench/import_bench.py --members 5000 --rounds 2 --status

In process, on PostgreSQL: --members members enrolled in one branch, each credited one service hour (so each has
rows on the open boards, and his branch and department rollups, for a transfer to move), then members files
(CSV; the upload's limit is 5,000 rows) that transfer every one of them to the other branch and back, each
imported as one transaction by an administrator (``import_roster``). Three kinds of import alternate, in a
rotating order, so all are measured in the same run:

- ``service``: the import as it runs;
- ``per-member locks``: the members locked one statement each (``lock_subjects`` replaced by a loop);
- ``per-transfer writes``: each transfer writing its organizations' board rows and head counts at once
  (``bumps_deferred`` replaced by a block that defers nothing).

With ``--status`` the files deactivate every member (状态 退休, effective today) and reactivate them instead, each
member's current affiliation moved 30 days back between rounds (a deactivation takes effect after it began); only
``service`` and ``per-change writes`` (the deactivations' and reactivations' organization writes at once) run.

Prints the median seconds per import of each kind and of its lock step, with their ratios to the service's, and
a dry run's time (validation only). Checks after each import that every member is in the branch the file named,
and at the end that the boards equal a rebuild and the totals the ledger.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkin_bench import in_process_app, machine, seed  # noqa: E402

BRANCHES = ("第一党支部", "第二党支部")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5, help="imports of each kind")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="points_bench_import")
    parser.add_argument("--status", action="store_true", help="deactivate and reactivate every member instead")
    return parser.parse_args()


def members_file(members: int, branch: str) -> bytes:
    from tests.roster_files import csv_bytes
    return csv_bytes("members", *[[f"党员{n}", f"139{n:08d}", branch, "北门社区", ""] for n in range(members)])


STATUS_HEADER = ["姓名", "手机号", "所在支部", "居住社区", "网格", "状态", "状态生效日期"]


def status_file(members: int, status: str) -> bytes:
    """Every member deactivated (退休, today) or reactivated (在册), staying in the first branch."""
    from points_service.db import utcnow
    from points_service.domain.lifecycle.status import local_today
    from tests.roster_files import csv_bytes

    on = local_today(utcnow()).isoformat() if status != "在册" else ""
    return csv_bytes("members", *[[f"党员{n}", f"139{n:08d}", BRANCHES[0], "北门社区", "", status, on]
                                  for n in range(members)], header=STATUS_HEADER)


def current_affiliations_moved_back(app) -> None:
    """Each member's current affiliation began 30 days earlier: a deactivation effective today must come after
    it, and a reactivation's began just now."""
    from points_service.db import db

    with app.app_context():
        db.session.execute(db.text("UPDATE affiliations SET valid_from = valid_from - interval '30 days' "
                                   "WHERE valid_to IS NULL"))
        db.session.commit()
        db.session.remove()


def add_second_branch_and_admin(app) -> int:
    from points_service.db import db
    from points_service.domain.accounts.users import add_user
    from points_service.domain.structure import add_organization
    from points_service.models import ROLE_SCOPE, Organization, OrgKind, Role

    with app.app_context():
        first = db.session.scalar(db.select(Organization).where(Organization.name == BRANCHES[0]))
        add_organization("BB2", BRANCHES[1], OrgKind.BRANCH, db.session.get(Organization, first.parent_id))
        admin = add_user("bench_importer", "correct-horse-42-bench", [(Role.ADMIN, ROLE_SCOPE[Role.ADMIN], None)])
        db.session.commit()
        return admin.id


def credit_everyone(app) -> None:
    """One service hour for every member, credited as the service does: each has rows on the open boards (and his
    department's) that a transfer moves."""
    from points_service.db import db, utcnow
    from points_service.domain.ledger.credit import Fact, credit
    from points_service.models import Member, SourceType, SubjectType

    with app.app_context():
        now = utcnow()
        for number, member_id in enumerate(db.session.scalars(db.select(Member.id).order_by(Member.id)), 1):
            credit(Fact(SubjectType.MEMBER, member_id, "member.activity_hour", SourceType.ADMIN, f"bench-{member_id}",
                        now), at=now)
            if number % 500 == 0:
                db.session.commit()
        db.session.commit()
        db.session.remove()


def per_member_locks(subjects) -> None:
    """What ``lock_subjects`` did before it chunked: one locking statement per subject, in the same order."""
    from points_service.domain.ledger.credit import lock_subject
    for subject_type, subject_id in sorted(set(subjects)):
        lock_subject(subject_type, subject_id)


class Timed:
    """Wraps the importer's ``lock_subjects`` to time the lock step of each import."""

    def __init__(self, locking) -> None:
        self.locking, self.seconds = locking, 0.0

    def __call__(self, subjects) -> None:
        started = time.perf_counter()
        self.locking(subjects)
        self.seconds = time.perf_counter() - started


def import_once(app, admin_id: int, content: bytes, locking, deferring, dry_run: bool = False) -> tuple[float, float]:
    from points_service.db import db
    from points_service.domain.access import principal_for
    from points_service.domain.roster import importing
    from points_service.models import User

    timed = Timed(locking)
    with app.app_context(), mock.patch.object(importing, "lock_subjects", timed), \
            mock.patch.object(importing, "bumps_deferred", deferring):
        actor = principal_for(db.session.get(User, admin_id))
        started = time.perf_counter()
        report = importing.import_roster(actor, "members", content, "members.csv",
                                         phone_key=app.config["PHONE_HASH_KEY"], dry_run=dry_run)
        spent = time.perf_counter() - started
        db.session.remove()
    assert report.valid and (dry_run or report.updated > 0), report.as_dict()
    return spent, timed.seconds


def members_in(app, branch: str) -> int:
    from points_service.db import db
    from points_service.models import Member, Organization

    with app.app_context():
        count = db.session.scalar(db.select(db.func.count()).select_from(Member).join(
            Organization, Member.branch_id == Organization.id).where(Organization.name == branch))
        db.session.remove()
        return count


def boards_and_totals_hold(app) -> bool:
    from points_service.db import db
    from points_service.domain.boards.audit import compare_boards
    from points_service.domain.ledger.totals import compare_totals

    with app.app_context():
        held = compare_boards() == [] and compare_totals() == []
        db.session.remove()
        return held


def active_members(app) -> int:
    from points_service.db import db
    from points_service.models import Member

    with app.app_context():
        count = db.session.scalar(db.select(db.func.count()).select_from(Member).where(Member.is_active))
        db.session.remove()
        return count


def transfer_rounds(app, args, admin_id: int, kinds: dict) -> tuple[dict, dict, list]:
    """Each kind's import times and lock-step times, files moving every member to the other branch and back."""
    files = [members_file(args.members, branch) for branch in BRANCHES]
    spent, locks = {kind: [] for kind in kinds}, {kind: [] for kind in kinds}
    dry = [import_once(app, admin_id, files[1], *kinds["service"], dry_run=True)[0] for _ in range(3)]
    moves = 0
    for round_ in range(args.rounds):
        order = list(kinds)[round_ % len(kinds):] + list(kinds)[:round_ % len(kinds)]  # none always goes first
        for kind in order:
            moves += 1
            total, locked = import_once(app, admin_id, files[moves % 2], *kinds[kind])
            assert members_in(app, BRANCHES[moves % 2]) == args.members
            spent[kind].append(total)
            locks[kind].append(locked)
    return spent, locks, dry


def status_rounds(app, args, admin_id: int, kinds: dict) -> dict:
    """Each kind's times for a file deactivating every member and for the one reactivating them."""
    deactivate, reactivate = status_file(args.members, "退休"), status_file(args.members, "在册")
    spent = {(kind, change): [] for kind in kinds for change in ("deactivate", "reactivate")}
    for round_ in range(args.rounds):
        for kind in list(kinds)[round_ % len(kinds):] + list(kinds)[:round_ % len(kinds)]:
            current_affiliations_moved_back(app)
            spent[(kind, "deactivate")].append(import_once(app, admin_id, deactivate, *kinds[kind])[0])
            assert active_members(app) == 0
            spent[(kind, "reactivate")].append(import_once(app, admin_id, reactivate, *kinds[kind])[0])
            assert active_members(app) == args.members
    return spent


def main() -> int:
    args = parse_args()
    app, _, schema = in_process_app(args)
    print("schema:", schema, flush=True)
    seed(app, args.members)
    admin_id = add_second_branch_and_admin(app)
    credit_everyone(app)
    from points_service.domain.boards.maintain import bumps_deferred
    from points_service.domain.ledger.credit import lock_subjects

    if args.status:
        kinds = {"service": (lock_subjects, bumps_deferred),
                 "per-change writes": (lock_subjects, contextlib.nullcontext)}
        spent = status_rounds(app, args, admin_id, kinds)
    else:
        kinds = {"service": (lock_subjects, bumps_deferred), "per-member locks": (per_member_locks, bumps_deferred),
                 "per-transfer writes": (lock_subjects, contextlib.nullcontext)}
        spent, locks, dry = transfer_rounds(app, args, admin_id, kinds)
    print(machine())
    print("boards equal a rebuild, totals equal the ledger:", boards_and_totals_hold(app))
    if args.status:
        print_status(args, kinds, spent)
    else:
        print_transfers(args, kinds, spent, locks, dry)
    return 0


def print_transfers(args, kinds: dict, spent: dict, locks: dict, dry: list) -> None:
    print(f"{args.members} transfers per import, {args.rounds} imports of each kind; dry run "
          f"{statistics.median(dry):.2f} s")
    base_total, base_lock = statistics.median(spent["service"]), statistics.median(locks["service"])
    for kind in kinds:
        total, lock = statistics.median(spent[kind]), statistics.median(locks[kind])
        print(f"{kind:>19}: import {total:6.2f} s ({total / base_total:.2f}×), lock step {lock * 1000:7.1f} ms "
              f"({lock / base_lock:.2f}×)")


def print_status(args, kinds: dict, spent: dict) -> None:
    print(f"{args.members} deactivations, then as many reactivations, per import; {args.rounds} of each kind")
    for change in ("deactivate", "reactivate"):
        base = statistics.median(spent[("service", change)])
        for kind in kinds:
            total = statistics.median(spent[(kind, change)])
            print(f"{change} {kind:>17}: import {total:6.2f} s ({total / base:.2f}×)")


if __name__ == "__main__":
    sys.exit(main())
