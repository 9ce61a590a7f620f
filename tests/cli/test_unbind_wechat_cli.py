"""``flask users unbind-wechat MEMBER_ID --reason …``: the operator's 解绑微信, through the same use case as the API and
the console (``domain/accounts/unbinding``), acting as the operator (no console user: the audit row has no actor)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.models import AuditEntry, User, WechatIdentity
from tests.factories import make_wechat_identity, make_world


@pytest.fixture
def world(app):
    world = make_world()
    world["identity"] = make_wechat_identity("oAliceCli0001", world["users"]["alice"])
    db.session.commit()
    return world


def unbind(app, *args):
    return app.test_cli_runner().invoke(args=["users", "unbind-wechat", *args])


def bound_user_id(openid: str) -> int | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(WechatIdentity.user_id).where(WechatIdentity.openid == openid))


def test_the_operator_unbinds_a_members_wechat_audited_and_his_sessions_end(app, world):
    alice, account = world["alice"], world["users"]["alice"]
    version = account.token_version
    result = unbind(app, str(alice.id), "--reason", "更换微信号")
    assert result.exit_code == 0, result.output
    assert f"member {alice.id}" in result.output and "oAliceCli0001" not in result.output
    assert bound_user_id("oAliceCli0001") is None
    assert db.session.get(User, account.id).token_version == version + 1
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "wechat.unbind"))
    assert (entry.actor_id, entry.target_id) == (None, str(alice.id))
    assert entry.detail == {"reason": "更换微信号", "user_id": account.id,
                            "wechat_identity_id": world["identity"].id, "via": "cli"}


def test_a_member_not_bound_is_refused_and_nothing_is_written(app, world):
    result = unbind(app, str(world["bob"].id), "--reason", "更换微信号")
    assert result.exit_code == 1 and "未绑定微信" in result.output, result.output
    assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id))
                             .where(AuditEntry.action == "wechat.unbind")) == 0


def test_an_unknown_member_is_refused(app, world):
    result = unbind(app, "999999", "--reason", "更换微信号")
    assert result.exit_code == 1 and "党员不存在" in result.output, result.output
    assert bound_user_id("oAliceCli0001") == world["users"]["alice"].id


def test_a_blank_reason_is_refused_and_nothing_changes(app, world):
    result = unbind(app, str(world["alice"].id), "--reason", "  ")
    assert result.exit_code == 1 and "请填写解绑原因" in result.output, result.output
    assert bound_user_id("oAliceCli0001") == world["users"]["alice"].id


@pytest.mark.parametrize("args", [["1"], ["0", "--reason", "x"], ["2147483648", "--reason", "x"],
                                  ["abc", "--reason", "x"]])
def test_a_missing_reason_or_a_member_id_out_of_range_is_a_usage_error(app, world, args):
    result = unbind(app, *args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert bound_user_id("oAliceCli0001") == world["users"]["alice"].id
