"""绑定状态 on the console's member list and member page: staff see whether a member has bound his WeChat (已绑定 /
未绑定, never the openid); 解绑微信 is offered only while he is bound."""

from __future__ import annotations

import re

from points_service.db import db
from tests.console.helpers import post, sign_in, text
from tests.factories import make_wechat_identity

OPENID = "oAliceBound001"


def bound(world) -> None:
    make_wechat_identity(OPENID, world["users"]["alice"])
    db.session.commit()


def row_of(page: str, member_id: int) -> str:
    match = re.search(rf'<tr data-member-id="{member_id}">(.*?)</tr>', page, re.S)
    assert match, f"no row for member {member_id}"
    return match.group(1)


def status_of(page: str) -> str:
    match = re.search(r'<p[^>]*id="wechat-binding"[^>]*>(.*?)</p>', page, re.S)
    assert match, "no 绑定状态 on the member page"
    return match.group(1)


def test_the_member_list_has_a_binding_column(client, world):
    bound(world)
    sign_in(client, "admin")
    page = text(client.get("/console/members"))
    assert "<th>绑定状态</th>" in page and OPENID not in page
    assert "已绑定" in row_of(page, world["alice"].id)
    assert "未绑定" in row_of(page, world["bob"].id) and "未绑定" in row_of(page, world["carol"].id)


def test_a_secretary_who_manages_nobody_sees_the_binding_but_no_button(client, world):
    bound(world)
    sign_in(client, "secretary")
    page = text(client.get(f"/console/members/{world['alice'].id}"))
    assert "绑定状态" in status_of(page) and "已绑定" in status_of(page)
    assert "解绑微信" not in page and OPENID not in page


def test_the_button_is_offered_only_while_bound_and_the_page_shows_unbound_after(client, world):
    bound(world)
    sign_in(client, "admin")
    bob = text(client.get(f"/console/members/{world['bob'].id}"))
    assert "未绑定" in status_of(bob) and 'id="unbind-wechat-form"' not in bob
    alice = text(client.get(f"/console/members/{world['alice'].id}"))
    assert "已绑定" in status_of(alice) and 'id="unbind-wechat-form"' in alice
    done = text(post(client, f"/console/members/{world['alice'].id}/unbind-wechat", {"reason": "更换微信号"},
                     follow_redirects=True))
    assert "未绑定" in status_of(done) and 'id="unbind-wechat-form"' not in done
    assert "未绑定" in row_of(text(client.get("/console/members")), world["alice"].id)
