"""Outcomes benchmark (issue 5): 业务之星, 流动红旗, the annual settlement and the HR files, for a whole city.

    .venv/bin/python bench/outcomes_bench.py --fresh            # on points_bench (bench/city_gen.py)
    .venv/bin/python bench/outcomes_bench.py --steps xlsx_members,xlsx_members_sample

What it measures, and how:
- Every step runs in its own child process (this script with ``--child STEP``) inside an app context whose
  config points at ``--database``; the parent reads the child's peak RSS from ``os.wait4`` (its own
  rusage, not the maximum over all children), so each step's memory is its own. ``baseline`` is a child
  that only builds the app and runs one query: the floor every other step's RSS includes.
- Steps, in order: ``stars`` propose_quarter_stars(2026-Q3) for the whole city + commit; ``stars_verify``
  verify_star_run (recomputes the run from the ledger); ``red_flag`` award_red_flags_job(2026-Q3) + commit;
  ``settle`` settle_year(SYSTEM, 2025) (commits); ``settle_verify`` verify_settlement(2025);
  ``csv_members``, ``xlsx_members``, ``csv_organizations``, ``xlsx_organizations``: write_export_file(2025, ...)
  + commit, to a temporary file (deleted afterwards, its size reported); ``xlsx_members_sample``: the same
  XLSX writer over the first ``--sample-rows`` rows (default: a tenth of the members, 50,000 for the full
  city) of the same city-wide row stream, so peak RSS at 1/10 and at all rows shows whether memory is
  bounded. (The org scope cannot select 50,000 rows: a department has ~1,000 members in the generated city.)
- The outcome rows exist after the first run: a proposed star run makes the job skip the quarter, awarded
  flags are returned unchanged, and a settled year is a 409. Without ``--fresh`` such steps report
  ``skipped (exists)`` and are not timed. ``--fresh`` deletes the 2026-Q3 star run and flags and the 2025
  settlement first, with triggers off (``SET session_replication_role = replica``: the rows are frozen by
  triggers) in the bench database only, then VACUUM ANALYZEs those tables. Audit rows of earlier runs stay.
- ``--work-mem`` sets PostgreSQL's work_mem for the steps' sessions (PGOPTIONS); the default is the server's.
- Between steps (untimed) the parent ANALYZEs the tables a step wrote, as autovacuum would eventually do.
Each step prints its time, rows and peak RSS; a markdown table is printed at the end. The machine is shared:
the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from city_gen import make_app  # noqa: E402  (bench/ is not a package; one way to point the app at a city)

QUARTER, YEAR = "2026-Q3", 2025
STEPS = ("baseline", "stars", "stars_verify", "red_flag", "settle", "settle_verify", "csv_members", "xlsx_members",
         "xlsx_members_sample", "csv_organizations", "xlsx_organizations")
ANALYZE_AFTER = {"stars": ("star_runs", "star_candidates"), "red_flag": ("red_flag_awards", "red_flag_candidates"),
                 "settle": ("annual_settlements", "annual_statements")}
PROTECTED = ("postgres", "test", "points")
RESULT = "RESULT "


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server")
    parser.add_argument("--database", default="points_bench", help="a city made by bench/city_gen.py")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of: " + ", ".join(STEPS))
    parser.add_argument("--fresh", action="store_true", help="delete the 2026-Q3 star run and flags and the 2025 "
                        "settlement first (triggers off, bench database only)")
    parser.add_argument("--sample-rows", type=int, default=0, help="rows of xlsx_members_sample (default: a tenth "
                        "of the members)")
    parser.add_argument("--work-mem", help="PostgreSQL work_mem for the steps' sessions (e.g. 64MB; default: the "
                        "server's), passed to the children as PGOPTIONS; printed with the results")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.steps = [step.strip() for step in args.steps.split(",") if step.strip()]
    unknown = sorted(set(args.steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps: {', '.join(unknown)}")
    if args.database in PROTECTED:
        parser.error(f"refusing to benchmark on the database {args.database!r}")
    return args


# -- the child: one step in its own process ----------------------------------------------------------------

def step_baseline(_args) -> dict:
    from points_service.db import db
    return {"rows": db.session.scalar(db.text("SELECT count(*) FROM members")), "note": "app + one query"}


def step_stars(_args) -> dict:
    from points_service.db import db
    from points_service.domain.periods import parse_period
    from points_service.domain.stars.runs import propose_quarter_stars
    result = propose_quarter_stars(parse_period(QUARTER))
    db.session.commit()
    if result.get("skipped"):
        return {"skipped": f"run {result['run_id']} exists"}
    return {"rows": result["candidates"], "note": f"run {result['run_id']}, {result['winners']} winners"}


def step_stars_verify(_args) -> dict:
    import sqlalchemy as sa

    from points_service.db import db
    from points_service.domain.stars.reading import verify_star_run
    from points_service.models import StarRun, StarRunStatus
    run = db.session.scalar(sa.select(StarRun).where(StarRun.period == QUARTER,
                                                     StarRun.status != StarRunStatus.WITHDRAWN))
    if run is None:
        return {"skipped": "no run to verify"}
    verification = verify_star_run(run)
    return {"rows": run.candidate_count, "ok": verification.matches,
            "note": f"matches={verification.matches}, {len(verification.differences)} differences"}


def step_red_flag(_args) -> dict:
    from points_service.db import db
    from points_service.domain.periods import parse_period
    from points_service.domain.red_flags.awards import award_red_flags_job, awards_of
    period = parse_period(QUARTER)
    if awards_of(period):
        return {"skipped": "flags awarded"}
    result = award_red_flags_job(period)
    db.session.commit()
    candidates = sum(award.candidate_count for award in awards_of(period))
    return {"rows": candidates, "note": f"{result['awards']} scopes, {result['holders']} holders"}


def step_settle(_args) -> dict:
    from points_service.domain.annual.settlement import SYSTEM, settle_year, settlement_of
    if settlement_of(YEAR) is not None:
        return {"skipped": f"{YEAR} settled"}
    settlement = settle_year(SYSTEM, YEAR)
    return {"rows": settlement.member_count + settlement.organization_count,
            "note": f"{settlement.member_count} members + {settlement.organization_count} organizations"}


def step_settle_verify(_args) -> dict:
    from points_service.domain.annual.settlement import settlement_of, verify_settlement
    settlement = settlement_of(YEAR)
    if settlement is None:
        return {"skipped": f"{YEAR} not settled"}
    result = verify_settlement(YEAR)
    return {"rows": settlement.member_count + settlement.organization_count, "ok": result["equal"],
            "note": f"equal={result['equal']}"}


def export_step(subject_name: str, fmt: str):
    def step(_args) -> dict:
        from points_service.db import db
        from points_service.domain.annual.settlement import settlement_of
        from points_service.domain.exports.files import write_export_file
        from points_service.models import SubjectType
        if settlement_of(YEAR) is None:
            return {"skipped": f"{YEAR} not settled"}
        with tempfile.TemporaryDirectory(prefix="outcomes_bench_") as directory:
            path = Path(directory) / f"annual-{YEAR}-{subject_name}.{fmt}"
            rows = write_export_file(YEAR, SubjectType(subject_name), fmt, path, via="bench")
            db.session.commit()
            size = path.stat().st_size
        return {"rows": rows, "note": f"{size / 2**20:.1f} MiB file"}
    return step


def step_xlsx_members_sample(args) -> dict:
    from points_service.domain.annual.settlement import settlement_of
    from points_service.domain.exports.annual import annual_rows, system_export
    from points_service.domain.exports.files import write_xlsx
    from points_service.models import SubjectType
    settlement = settlement_of(YEAR)
    if settlement is None:
        return {"skipped": f"{YEAR} not settled"}
    limit = args.sample_rows or max(1, settlement.member_count // 10)
    with tempfile.TemporaryDirectory(prefix="outcomes_bench_") as directory:
        path = Path(directory) / f"annual-{YEAR}-member-sample.xlsx"
        rows = write_xlsx(itertools.islice(annual_rows(system_export(YEAR, SubjectType.MEMBER)), limit), path)
        size = path.stat().st_size
    return {"rows": rows, "note": f"first {limit} rows of the city stream, {size / 2**20:.1f} MiB file"}


STEP_FUNCTIONS = {
    "baseline": step_baseline, "stars": step_stars, "stars_verify": step_stars_verify, "red_flag": step_red_flag,
    "settle": step_settle, "settle_verify": step_settle_verify,
    "csv_members": export_step("member", "csv"), "xlsx_members": export_step("member", "xlsx"),
    "xlsx_members_sample": step_xlsx_members_sample,
    "csv_organizations": export_step("organization", "csv"), "xlsx_organizations": export_step("organization", "xlsx"),
}


def run_child(args) -> None:
    app = make_app(args)
    with app.app_context():
        began = time.perf_counter()
        result = STEP_FUNCTIONS[args.child](args)
        result["seconds"] = time.perf_counter() - began
        from points_service.db import db
        db.session.remove()
        db.engine.dispose()
    result["self_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(RESULT + json.dumps(result), flush=True)


# -- the parent: fresh state, children, table -------------------------------------------------------------

FRESH_SQL = (
    f"DELETE FROM star_objections WHERE run_id IN (SELECT id FROM star_runs WHERE period = '{QUARTER}')",
    f"DELETE FROM star_candidates WHERE run_id IN (SELECT id FROM star_runs WHERE period = '{QUARTER}')",
    f"DELETE FROM star_runs WHERE period = '{QUARTER}'",
    f"DELETE FROM red_flag_candidates WHERE award_id IN (SELECT id FROM red_flag_awards WHERE period = '{QUARTER}')",
    f"DELETE FROM red_flag_awards WHERE period = '{QUARTER}'",
    f"DELETE FROM annual_statements WHERE year = {YEAR}",
    f"DELETE FROM annual_settlements WHERE year = {YEAR}",
)


def connect(args):
    return psycopg.connect(f"{args.pg}/{args.database}", autocommit=True)


def make_fresh(args) -> None:
    """Remove this bench's earlier outcome rows. They are frozen by triggers, hence replica mode (this session
    only, in the bench database only)."""
    began = time.perf_counter()
    with connect(args) as conn:
        conn.execute("SET session_replication_role = replica")
        deleted = [conn.execute(sql).rowcount for sql in FRESH_SQL]
        conn.execute("SET session_replication_role = DEFAULT")
        for tables in ANALYZE_AFTER.values():
            for table in tables:
                conn.execute(f"VACUUM ANALYZE {table}")
    print(f"--fresh: deleted {sum(deleted):,} prior outcome rows ({QUARTER} stars and flags, {YEAR} settlement) "
          f"in {time.perf_counter() - began:.1f} s", flush=True)


def analyze(args, step: str) -> None:
    with connect(args) as conn:
        for table in ANALYZE_AFTER.get(step, ()):
            conn.execute(f"ANALYZE {table}")


def spawn(args, step: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", step, "--pg", args.pg,
               "--database", args.database, "--sample-rows", str(args.sample_rows)]
    began = time.perf_counter()
    env = dict(os.environ)
    if args.work_mem:
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c work_mem={args.work_mem}".strip()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    result: dict = {}
    for line in child.stdout:
        if line.startswith(RESULT):
            result = json.loads(line[len(RESULT):])
        else:
            print(f"    {line.rstrip()}", flush=True)
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    result.update(step=step, wall_seconds=time.perf_counter() - began, peak_rss_mib=usage.ru_maxrss / 1024,
                  exit=child.returncode)
    if child.returncode != 0:
        result.setdefault("skipped", f"failed (exit {child.returncode})")
    return result


def show(result: dict) -> None:
    if "skipped" in result:
        print(f"{result['step']:<22} skipped: {result['skipped']}  (peak RSS {result['peak_rss_mib']:.0f} MiB)",
              flush=True)
        return
    print(f"{result['step']:<22} {result['seconds']:8.1f} s  {result.get('rows', 0):>9,} rows  "
          f"peak RSS {result['peak_rss_mib']:6.0f} MiB  {result.get('note', '')}", flush=True)


def table(results: list[dict]) -> str:
    lines = ["| step | time (s) | rows | rows/s | peak RSS (MiB) | note |", "|---|---:|---:|---:|---:|---|"]
    for r in results:
        if "skipped" in r:
            lines.append(f"| {r['step']} | – | – | – | {r['peak_rss_mib']:.0f} | skipped: {r['skipped']} |")
            continue
        rows, seconds = r.get("rows", 0), r["seconds"]
        rate = f"{rows / seconds:,.0f}" if seconds > 0 and rows and r["step"] != "baseline" else "–"
        lines.append(f"| {r['step']} | {seconds:.1f} | {rows:,} | {rate} | {r['peak_rss_mib']:.0f} | "
                     f"{r.get('note', '')} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    args = parse_args()
    if args.child:
        run_child(args)
        return 0
    print(f"outcomes bench on {args.database}: {machine()}; load average {load()}; work_mem "
          f"{args.work_mem or 'server default'}", flush=True)
    if args.fresh:
        make_fresh(args)
    results = []
    for step in args.steps:
        result = spawn(args, step)
        show(result)
        results.append(result)
        analyze(args, step)
    failed = [r["step"] for r in results if r.get("ok") is False or r["exit"] != 0]
    print(f"\nload average after: {load()}\n\n{table(results)}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"database": args.database, "machine": machine(), "load": load(),
                                               "results": results}, indent=2))
    if failed:
        print(f"FAILED: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
