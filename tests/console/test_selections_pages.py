"""评选 pages: an admin proposes a 业务之星 run and reviews every candidate's reasons, publishes it, records
and decides an objection, finalizes after publicity; community admins review only their communities;
others are refused; posts need the CSRF token; 流动红旗 awarded and listed."""

from __future__ import annotations

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.ledger.credit import award
from points_service.domain.stars import runs as stars
from points_service.models import (
    AwardWithdrawal,
    RedFlagAward,
    Report,
    ReportStatus,
    SourceType,
    StarCandidate,
    StarObjection,
    StarRun,
    StarRunStatus,
    SubjectType,
)
from tests.console.helpers import post, sign_in, text
from tests.factories.ledger import local, member_fact

QUARTER = "2026-Q3"


def star_member(member, activities: int, hours: int) -> None:
    """Checked-out activities in 2026-Q3 (one a day) and a report confirmed in time."""
    for n in range(activities):
        award(member_fact(member, "member.activity_hour", units=hours, source_type=SourceType.CHECKIN),
              at=local(2026, 8, 1 + n, 18))
    db.session.add(Report(subject_type=SubjectType.MEMBER, subject_id=member.id, community_id=member.community_id,
                          half="2026-H2", status=ReportStatus.CONFIRMED, decided_at=local(2026, 7, 2)))
    db.session.commit()


def the_run() -> StarRun:
    return db.session.scalar(sa.select(StarRun).where(StarRun.status != StarRunStatus.WITHDRAWN))


def winners(run: StarRun) -> set[int]:
    return set(db.session.scalars(sa.select(StarCandidate.member_id).where(StarCandidate.run_id == run.id,
                                                                           StarCandidate.winner)))


def proposed(world) -> StarRun:
    star_member(world["alice"], 3, 4)  # 12 points: selected in north
    star_member(world["carol"], 1, 4)  # one activity: not eligible (north)
    star_member(world["bob"], 3, 4)  # selected in south
    return stars.propose_star_run(principal_for(world["users"]["admin"]), QUARTER)


def test_an_admin_proposes_a_run_and_reviews_every_candidates_reasons(client, world):
    star_member(world["alice"], 3, 4)
    star_member(world["carol"], 1, 4)
    sign_in(client, "admin")
    response = post(client, "/console/selections/runs", {"period": QUARTER, "scope": ""})
    run = the_run()
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/console/selections/runs/{run.id}")
    page = text(client.get(f"/console/selections/runs/{run.id}"))
    assert 'id="run-status">待发布<' in page and 'data-action="publish"' in page
    assert 'data-code="selected"' in page and 'data-code="min_activities"' in page
    assert "张晓丽" in page and "王𠮷" in page


def test_a_community_admin_reviews_only_his_communitys_candidates_and_cannot_publish(client, world):
    run = proposed(world)
    sign_in(client, "north_admin")
    page = text(client.get(f"/console/selections/runs/{run.id}"))
    assert "张晓丽" in page and "李·建国" not in page and 'data-action="publish"' not in page
    post(client, f"/console/selections/runs/{run.id}/publish")
    db.session.expire_all()
    assert db.session.get(StarRun, run.id).status == StarRunStatus.PROPOSED


def test_a_community_admin_sees_only_his_communitys_winners_and_objections_on_the_run_page(client, world):
    run = proposed(world)  # alice wins in north, bob in south
    admin = principal_for(world["users"]["admin"])
    stars.publish_star_run(admin, run.id)
    stars.raise_objection(admin, run.id, world["alice"].id, "北门：活动照片存疑")
    stars.raise_objection(admin, run.id, world["bob"].id, "南门：代签到")
    sign_in(client, "north_admin")
    page = text(client.get(f"/console/selections/runs/{run.id}"))
    assert "北门：活动照片存疑" in page and "张晓丽" in page
    assert "南门：代签到" not in page and "李·建国" not in page
    sign_in(client, "admin")
    page = text(client.get(f"/console/selections/runs/{run.id}"))
    assert "北门：活动照片存疑" in page and "南门：代签到" in page and "李·建国" in page


def test_a_secretary_cannot_open_a_run_but_sees_the_selections_page(client, world):
    run = proposed(world)
    sign_in(client, "secretary")
    assert client.get(f"/console/selections/runs/{run.id}").status_code == 403
    page = text(client.get(f"/console/selections?quarter={QUARTER}"))
    assert 'id="star-runs"' in page and f"#{run.id}" not in page and "生成评选" not in page


def test_publishing_then_an_upheld_objection_reselects_the_community(client, world):
    run = proposed(world)
    sign_in(client, "admin")
    post(client, f"/console/selections/runs/{run.id}/publish")
    db.session.expire_all()
    assert db.session.get(StarRun, run.id).status == StarRunStatus.PUBLISHED
    post(client, f"/console/selections/runs/{run.id}/objections", {"member_id": world["alice"].id,
                                                                   "reason": "活动照片系他人代签"})
    objection = db.session.scalar(sa.select(StarObjection))
    assert objection.reason == "活动照片系他人代签"
    post(client, f"/console/selections/runs/{run.id}/objections/{objection.id}/decision", {"upheld": "1",
                                                                                         "comment": "核实属实"})
    db.session.expire_all()
    assert world["alice"].id not in winners(db.session.get(StarRun, run.id))
    assert "核实属实" in text(client.get(f"/console/selections/runs/{run.id}"))


def test_finalizing_after_publicity_freezes_the_run(client, world):
    run = proposed(world)
    stars.publish_star_run(principal_for(world["users"]["admin"]), run.id, now=local(2026, 10, 9, 10))
    sign_in(client, "admin")
    post(client, f"/console/selections/runs/{run.id}/finalize")
    db.session.expire_all()
    assert db.session.get(StarRun, run.id).status == StarRunStatus.FINALIZED
    page = text(client.get(f"/console/selections?quarter={QUARTER}"))
    assert "张晓丽" in page and "李·建国" in page  # the published winners


def test_finalizing_during_publicity_is_refused_with_the_reason(client, world):
    run = proposed(world)
    sign_in(client, "admin")
    post(client, f"/console/selections/runs/{run.id}/publish")
    response = post(client, f"/console/selections/runs/{run.id}/finalize", follow_redirects=True)
    assert "公示期至" in text(response)
    db.session.expire_all()
    assert db.session.get(StarRun, run.id).status == StarRunStatus.PUBLISHED


def test_a_post_without_the_csrf_token_changes_nothing(client, world):
    run = proposed(world)
    sign_in(client, "admin")
    response = client.post(f"/console/selections/runs/{run.id}/publish")
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(StarRun, run.id).status == StarRunStatus.PROPOSED


def test_an_admin_awards_the_red_flags_of_a_closed_quarter_and_everyone_sees_them(client, world):
    sign_in(client, "secretary")
    post(client, "/console/selections/red-flags", {"period": QUARTER})
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RedFlagAward)) == 0
    client.post("/console/logout", data={"csrf_token": ""})
    sign_in(client, "admin")
    post(client, "/console/selections/red-flags", {"period": QUARTER})
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RedFlagAward)) > 0
    page = text(client.get(f"/console/selections?flag_period={QUARTER}"))
    assert 'id="red-flags"' in page and "本期尚未评出" not in page


def test_a_month_is_not_a_red_flag_period_under_this_policy(client, world):
    sign_in(client, "admin")
    response = post(client, "/console/selections/red-flags", {"period": "2026-10"}, follow_redirects=True)
    assert "流动红旗按季度评选" in text(response)


def test_a_period_in_digits_other_than_ascii_is_refused_on_the_form_and_nothing_is_written(client, world):
    sign_in(client, "admin")
    for url, period in (("/console/selections/runs", "２０２６-Q3"), ("/console/selections/red-flags", "٢٠٢٦-Q3")):
        response = post(client, url, {"period": period}, follow_redirects=True)
        assert response.status_code == 200 and "如 2026" in text(response), url
        assert "须在 2000 年" not in text(response)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StarRun)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RedFlagAward)) == 0



def test_a_period_outside_the_services_years_is_refused_on_the_form_instead_of_a_500(client, world):
    sign_in(client, "admin")
    for url, period in (("/console/selections/runs", "2201-Q1"), ("/console/selections/runs", "1999-Q4"),
                        ("/console/selections/red-flags", "0000-01"), ("/console/selections/red-flags", "9999-Q4")):
        response = post(client, url, {"period": period}, follow_redirects=True)
        assert response.status_code == 200 and "须在 2000 年至 2200 年之间" in text(response), (url, period)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StarRun)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RedFlagAward)) == 0

def test_an_admin_withdraws_a_published_star_with_a_reason_and_it_stays_listed_as_withdrawn(client, world):
    run = proposed(world)
    stars.publish_star_run(principal_for(world["users"]["admin"]), run.id, now=local(2026, 10, 9, 10))
    alice = db.session.scalar(sa.select(StarCandidate).where(StarCandidate.run_id == run.id,
                                                             StarCandidate.member_id == world["alice"].id))
    sign_in(client, "admin")
    page = text(client.get(f"/console/selections?quarter={QUARTER}"))
    assert f'/console/selections/stars/{alice.id}/withdraw' in page
    refused = post(client, f"/console/selections/stars/{alice.id}/withdraw", {"reason": "", "run_id": str(run.id)},
                   follow_redirects=True)
    assert "撤销须填写理由" in text(refused)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AwardWithdrawal)) == 0
    done = post(client, f"/console/selections/stars/{alice.id}/withdraw", {"reason": "材料不实", "quarter": QUARTER},
                follow_redirects=True)
    assert "已撤销" in text(done) and "材料不实" in text(done)
    again = post(client, f"/console/selections/stars/{alice.id}/withdraw", {"reason": "材料不实"},
                 follow_redirects=True)
    assert "该荣誉已撤销" in text(again)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AwardWithdrawal)) == 1


def test_only_admins_withdraw_and_a_withdrawal_needs_the_csrf_token(client, world):
    run = proposed(world)
    stars.publish_star_run(principal_for(world["users"]["admin"]), run.id, now=local(2026, 10, 9, 10))
    winner = db.session.scalar(sa.select(StarCandidate.id).where(StarCandidate.run_id == run.id,
                                                                 StarCandidate.winner))
    sign_in(client, "north_admin")
    refused = post(client, f"/console/selections/stars/{winner}/withdraw", {"reason": "越权"}, follow_redirects=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AwardWithdrawal)) == 0
    assert "撤销" not in text(refused).split('id="winners"')[1].split("</ul>")[0]  # no withdraw action offered
    post(client, "/console/logout")
    sign_in(client, "admin")
    assert client.post(f"/console/selections/stars/{winner}/withdraw", data={"reason": "x"}).status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AwardWithdrawal)) == 0


def test_the_objection_form_offers_any_candidate_of_the_run_not_only_the_winners(client, world):
    run = proposed(world)
    sign_in(client, "admin")
    post(client, f"/console/selections/runs/{run.id}/publish")
    page = text(client.get(f"/console/selections/runs/{run.id}"))
    assert f'<option value="{world["carol"].id}">' in page  # carol is a candidate, not a winner
    post(client, f"/console/selections/runs/{run.id}/objections", {"member_id": world["carol"].id,
                                                                   "reason": "报到材料存疑"})
    assert db.session.scalar(sa.select(StarObjection.member_id)) == world["carol"].id


def test_an_admin_withdraws_a_red_flag_from_the_selections_page(client, world):
    for name in ("alice", "bob", "carol"):
        star_member(world[name], 1, 1)
    sign_in(client, "admin")
    post(client, "/console/selections/red-flags", {"period": QUARTER})
    flag = db.session.scalar(sa.select(RedFlagAward).where(RedFlagAward.organization_id.is_not(None)))
    done = post(client, f"/console/selections/red-flags/{flag.id}/withdraw",
                {"reason": "弄虚作假", "flag_period": QUARTER}, follow_redirects=True)
    assert "已撤销" in text(done) and "弄虚作假" in text(done)
