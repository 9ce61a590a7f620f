"""How long does a full roster upload that transfers every member take, and what does locking its members in a few
statements save against one statement per member?

    .venv/bin/python bench/import_bench.py --members 5000 --rounds 5

In process, on PostgreSQL: --members members enrolled in one branch, then members files (CSV, the upload's
limit is 5,000 rows) that transfer every one of them to the other branch and back, each imported as one
transaction by an administrator (``import_roster``). The imports alternate between the service's
``lock_subjects`` (one ``SELECT … ORDER BY id FOR UPDATE`` per chunk of ids) and the same locks taken one
statement per member (``per-member`` rows), so both are measured in the same run. Prints the median seconds per
import of each, the median time of the lock step alone, their ratios, and a dry run's time (validation only).
Checks after each import that every member is in the branch the file named.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkin_bench import ROOT, build_schema, machine, make_app, recreate_database, seed, server_env  # noqa: E402

BRANCHES = ("第一党支部", "第二党支部")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5, help="imports of each kind")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="points_bench_import")
    return parser.parse_args()


def members_file(members: int, branch: str) -> bytes:
    from tests.roster_files import csv_bytes
    return csv_bytes("members", *[[f"党员{n}", f"139{n:08d}", branch, "北门社区", ""] for n in range(members)])


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


def import_once(app, admin_id: int, content: bytes, locking, dry_run: bool = False) -> tuple[float, float]:
    from points_service.db import db
    from points_service.domain.access import principal_for
    from points_service.domain.roster import importing
    from points_service.models import User

    timed = Timed(locking)
    with app.app_context(), _patched(importing, "lock_subjects", timed):
        actor = principal_for(db.session.get(User, admin_id))
        started = time.perf_counter()
        report = importing.import_roster(actor, "members", content, "members.csv",
                                         phone_key=app.config["PHONE_HASH_KEY"], dry_run=dry_run)
        spent = time.perf_counter() - started
        db.session.remove()
    assert report.valid and (dry_run or report.updated > 0), report.as_dict()
    return spent, timed.seconds


@contextlib.contextmanager
def _patched(module, name: str, value):
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def members_in(app, branch: str) -> int:
    from points_service.db import db
    from points_service.models import Member, Organization

    with app.app_context():
        count = db.session.scalar(db.select(db.func.count()).select_from(Member).join(
            Organization, Member.branch_id == Organization.id).where(Organization.name == branch))
        db.session.remove()
        return count


def main() -> int:
    args = parse_args()
    env = server_env(args)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("POINTS_", "BENCH_"))})
    sys.path.insert(0, str(ROOT))
    recreate_database(args)
    print("schema:", build_schema(args, env), flush=True)
    app = make_app()
    seed(app, args.members)
    admin_id = add_second_branch_and_admin(app)
    from points_service.domain.ledger.credit import lock_subjects

    files = [members_file(args.members, branch) for branch in BRANCHES]
    kinds = {"chunked": lock_subjects, "per-member": per_member_locks}
    spent = {kind: [] for kind in kinds}
    locks = {kind: [] for kind in kinds}
    dry = [import_once(app, admin_id, files[1], lock_subjects, dry_run=True)[0] for _ in range(3)]
    moves = 0
    for round_ in range(args.rounds):
        for kind in (list(kinds) if round_ % 2 == 0 else list(reversed(kinds))):  # neither always goes first
            locking = kinds[kind]
            moves += 1
            total, locked = import_once(app, admin_id, files[moves % 2], locking)
            assert members_in(app, BRANCHES[moves % 2]) == args.members
            spent[kind].append(total)
            locks[kind].append(locked)
    print(machine())
    print(f"{args.members} transfers per import, {args.rounds} imports of each kind; dry run "
          f"{statistics.median(dry):.2f} s")
    base_total, base_lock = statistics.median(spent["per-member"]), statistics.median(locks["per-member"])
    for kind in kinds:
        total, lock = statistics.median(spent[kind]), statistics.median(locks[kind])
        print(f"{kind:>10}: import {total:6.2f} s ({total / base_total:.2f}×), lock step {lock * 1000:7.1f} ms "
              f"({lock / base_lock:.3f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
