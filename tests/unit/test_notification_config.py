"""The notifications file is validated at start-up: templates and their field mapping are data, and a typo is
refused with the field named rather than reaching a member."""

from __future__ import annotations

import copy

import pytest
import yaml

from config.settings import DEFAULT_POLICY_FILE
from points_service.domain.notifications.config import NotificationConfigInvalid, load_config, parse_config
from points_service.domain.notifications.outbox import text_of, wechat_data

SHIPPED = DEFAULT_POLICY_FILE.parent / "notifications.yaml"


@pytest.fixture
def document():
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def test_the_shipped_file_is_valid_and_covers_every_event_of_the_issue():
    config = load_config(SHIPPED, environ={})
    assert set(config.events) == {"record_approved", "record_rejected", "record_needs_info", "report_confirmed",
                                  "report_rejected", "activity_reminder", "activity_cancelled", "activity_moved",
                                  "points_expiring",
                                  "star_published", "star_publicity_extended", "star_removed",
                                  "order_ready", "order_cancelled", "order_expired"}
    assert config.templates["record_decided"].title == "审核结果通知"
    # No configured WeChat template is about a cancellation: the inbox alone tells it.
    assert config.events["activity_cancelled"].template is None
    assert config.events["activity_moved"].template is None  # 活动开始提醒 would misname a change too
    # 评选结果通知 carries the publicity's end date, which a winner taken off has none of: inbox only.
    assert config.events["star_removed"].template is None


def test_a_template_id_comes_from_its_environment_variable_when_set(document):
    config = parse_config(document, environ={"POINTS_WECHAT_TEMPLATE_RECORD_DECIDED": "tmpl-from-env"})
    assert config.templates["record_decided"].template_id == "tmpl-from-env"
    assert config.templates["order_ready"].template_id == "dev-order-ready"


@pytest.mark.parametrize(("mutate", "named"), [
    (lambda d: d["templates"]["record_decided"]["fields"].update(colour9="item_name"), "colour9"),
    (lambda d: d["events"]["record_rejected"].update(template="no_such_template"), "no_such_template"),
    (lambda d: d["events"]["order_ready"].update(body="{item_name} {salary}"), "salary"),
    (lambda d: d["events"]["activity_cancelled"].update(body="{activity_title} {salary}"), "salary"),  # inbox only
    (lambda d: d["templates"]["order_ready"]["fields"].update(thing9="reason"), "reason"),
    (lambda d: d["events"].update(made_up_event=d["events"]["order_ready"]), "made_up_event"),
    (lambda d: d["delivery"].update(max_attempts=0), "max_attempts"),
    (lambda d: d.update(surprise=True), "surprise"),
])
def test_a_broken_file_is_refused_naming_what_is_wrong(document, mutate, named):
    broken = copy.deepcopy(document)
    mutate(broken)
    with pytest.raises(NotificationConfigInvalid, match=named):
        parse_config(broken, environ={})


def test_wechat_values_are_cut_to_their_keyword_types_limits():
    data = wechat_data({"thing1": "a", "phrase2": "b", "character_string3": "c", "time4": "d"},
                       {"a": "一" * 30, "b": "审核未能通过", "c": "x" * 40, "d": "2026-11-10 09:30"})
    assert [len(data[k]["value"]) for k in ("thing1", "phrase2", "character_string3")] == [20, 5, 32]
    assert data["time4"] == {"value": "2026-11-10 09:30"}


def test_only_free_text_keywords_are_cut_with_an_ellipsis_others_are_cut_within_their_characters():
    fields = {"thing1": "a", "short_thing2": "a", "phrase3": "b", "number4": "c", "letter5": "d",
              "character_string6": "e", "name7": "f", "amount8": "c"}
    data = wechat_data(fields, {"a": "一" * 30, "b": "审核未能通过", "c": "1" * 40, "d": "x" * 40,
                                "e": "AB" * 20, "f": "欧阳" * 6})
    assert data["thing1"]["value"] == "一" * 19 + "…" and data["short_thing2"]["value"] == "一" * 4 + "…"
    assert data["phrase3"]["value"] == "审核未能通"
    assert (data["number4"]["value"], data["amount8"]["value"]) == ("1" * 32, "1" * 11)
    assert (data["letter5"]["value"], data["character_string6"]["value"]) == ("x" * 32, "AB" * 16)
    assert data["name7"]["value"] == "欧阳" * 5
    assert not any(value["value"].endswith("…") for key, value in data.items() if "thing" not in key)


@pytest.mark.parametrize("keyword", ["phrase2", "number2", "letter2", "character_string2", "name2", "amount2"])
def test_free_text_mapped_to_a_keyword_that_takes_only_some_characters_is_refused(document, keyword):
    broken = copy.deepcopy(document)
    fields = broken["templates"]["record_decided"]["fields"]
    del fields["phrase2"]
    fields[keyword] = "reason"  # a decider's words: any characters, any length
    with pytest.raises(NotificationConfigInvalid, match=keyword):
        parse_config(broken, environ={})


def test_values_read_as_a_member_reads_them():
    from datetime import UTC, datetime
    from decimal import Decimal

    assert text_of(datetime(2026, 11, 10, 1, 30, tzinfo=UTC)) == "2026-11-10 09:30"
    assert (text_of(Decimal("10.00")), text_of(Decimal("2.50")), text_of(None)) == ("10", "2.5", "")


@pytest.mark.parametrize(("points", "text"), [
    ("2.50", "2.5"), ("3", "3"), ("3.00", "3"), ("0.25", "0.25"), ("10.10", "10.1"), ("100", "100"),
    ("1200.00", "1200"), ("0.00", "0"), ("-0.00", "0"), ("-2.50", "-2.5"),
])
def test_points_read_without_trailing_zeros_as_the_mini_program_shows_them(points, text):
    from decimal import Decimal

    assert text_of(Decimal(points)) == text
    assert wechat_data({"number1": "points"}, {"points": text_of(Decimal(points))}) == {"number1": {"value": text}}


def test_production_refuses_to_start_without_real_template_ids(monkeypatch):
    from types import SimpleNamespace

    from points_service.domain.notifications.config import init_app

    app = SimpleNamespace(config={"NOTIFICATIONS_FILE": str(SHIPPED), "ENV_NAME": "production",
                                  "WECHAT_TIMEOUT_SECONDS": 5.0}, extensions={})
    with pytest.raises(NotificationConfigInvalid, match="record_decided"):
        init_app(app)
    for key, variable in yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))["templates"].items():
        monkeypatch.setenv(variable["template_id_env"], f"real-{key}")
    init_app(app)
    assert app.extensions["notifications"].templates["order_ready"].template_id == "real-order_ready"


def test_production_settings_refuse_the_log_only_sender(monkeypatch):
    from config.settings import Production, UnsafeConfiguration

    monkeypatch.setenv("POINTS_WECHAT_DEV_SEND", "1")
    with pytest.raises(UnsafeConfiguration, match="POINTS_WECHAT_DEV_SEND"):
        Production().check()


def test_two_templates_sharing_one_wechat_template_id_are_refused_naming_both(document):
    # WeChat counts grants per template id, we count them per key: sharing an id would over-count grants.
    environ = {"POINTS_WECHAT_TEMPLATE_ORDER_READY": "tmpl-shared",
               "POINTS_WECHAT_TEMPLATE_ORDER_CLOSED": "tmpl-shared"}
    with pytest.raises(NotificationConfigInvalid, match="order_ready, order_closed.*tmpl-shared"):
        parse_config(document, environ=environ)
    shared_fallback = copy.deepcopy(document)
    shared_fallback["templates"]["report_decided"]["template_id"] = "dev-record-decided"
    with pytest.raises(NotificationConfigInvalid, match="record_decided, report_decided"):
        parse_config(shared_fallback, environ={})


@pytest.mark.parametrize(("lease", "timeout", "starts"), [
    (30, 5.0, False), (69, 5.0, False), (70, 5.0, True), (300, 5.0, True), (300, 40.0, False), (350, 40.0, True),
])
def test_a_delivery_lease_shorter_than_the_slowest_send_is_refused_at_start_up(document, tmp_path, lease, timeout,
                                                                               starts):
    # One send: up to 4 WeChat calls, each waiting the timeout to connect and again to read, plus a 30 s margin.
    from types import SimpleNamespace

    from points_service.domain.notifications.config import init_app

    document["delivery"]["lease_seconds"] = lease
    path = tmp_path / "notifications.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    app = SimpleNamespace(config={"NOTIFICATIONS_FILE": str(path), "ENV_NAME": "testing",
                                  "WECHAT_TIMEOUT_SECONDS": timeout}, extensions={})
    if starts:
        init_app(app)
        assert app.extensions["notifications"].delivery["lease_seconds"] == lease
    else:
        with pytest.raises(NotificationConfigInvalid, match=r"lease_seconds.*WECHAT_TIMEOUT_SECONDS"):
            init_app(app)


def test_the_lease_check_counts_every_call_one_send_can_make(monkeypatch):
    # No cached token, and WeChat rejects the token twice: stable_token, send, stable_token (refresh), send.
    from points_service.integrations import wechat

    calls = []

    def post(_self, path, _params, _body):
        calls.append(path)
        return {"access_token": f"token-{len(calls)}", "expires_in": 7200} if path.endswith("stable_token") else {
            "errcode": 40001, "errmsg": "invalid credential"}

    wechat.forget_tokens()
    monkeypatch.setattr(wechat.SubscribeSender, "_post", post)
    sender = wechat.SubscribeSender(wechat.WechatClient("http://wechat.invalid", "wx-app", "secret"))
    with pytest.raises(wechat.SendFailed):
        sender.send("openid-1", "tmpl", {})
    wechat.forget_tokens()
    assert len(calls) == wechat.SEND_MAX_CALLS == 4
