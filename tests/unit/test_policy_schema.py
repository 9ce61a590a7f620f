"""The policy schema: the default file is valid, and each kind of mistake is refused with its field named."""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal

import pytest

from config.settings import DEFAULT_POLICY_FILE
from points_service.domain.errors import ServiceError
from points_service.domain.policy import (
    PolicyInvalid,
    UnknownItem,
    canonical_document,
    checksum,
    load_policy_text,
    parse_policy,
)

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def default_document() -> dict:
    return load_policy_text(DEFAULT_POLICY_FILE.read_bytes())


def errors_of(document) -> dict:
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy(document)
    assert caught.value.status == 422 and caught.value.code == "policy_invalid"
    return caught.value.data["errors"]


# ---------------------------------------------------------------- the default file


def test_the_default_policy_file_parses():
    policy = parse_policy(default_document())
    assert policy.version is None and policy.timezone == "Asia/Shanghai"
    hour = policy.item("member.activity_hour")
    assert (hour.points, hour.unit, hour.max_units_per_fact) == (Decimal(1), "hours", Decimal(4))
    assert hour.ledgers == frozenset({"assessment", "redeemable"})
    assert policy.item("member.no_show").points == Decimal(-5)
    assert policy.monthly_positive_cap == {"member": Decimal(30), "organization": None}


def test_every_event_of_the_default_policy_names_an_existing_item():
    policy = parse_policy(default_document())
    assert {name: policy.event_item(name).code for name in policy.events} == dict(policy.events)


def test_the_default_grades_and_stars_follow_the_documented_practice():
    policy = parse_policy(default_document())
    assert [(b.name, b.min_score) for b in policy.grades.bands] == [
        ("优秀", 90), ("较好", 75), ("一般", 60), ("差", 0)]
    assert policy.grades.excellent_share_cap == Decimal("0.20")
    assert policy.stars.tie_breaks == ("hours", "micro_wishes", "reached_first", "id")
    assert policy.red_flag.min_report_rate == Decimal("0.95")


# ---------------------------------------------------------------- mistakes, each named by its field


def _set(document: dict, path: str, value) -> dict:
    *parents, last = path.split("/")
    node = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return document


def _delete(document: dict, path: str) -> dict:
    *parents, last = path.split("/")
    node = document
    for key in parents:
        node = node[key]
    del node[last]
    return document


MISTAKES = [
    ("negative award", lambda d: _set(d, "items/member.activity_hour/points", -1),
     "items.member.activity_hour.points"),
    ("positive deduction", lambda d: _set(d, "items/member.no_show/points", 5), "items.member.no_show.points"),
    ("unknown ledger", lambda d: _set(d, "items/member.report/ledgers", ["assessment", "gold"]),
     "items.member.report.ledgers.1"),
    ("ledgers without assessment", lambda d: _set(d, "items/member.report/ledgers", ["redeemable"]),
     "items.member.report.ledgers"),
    ("duplicate ledger", lambda d: _set(d, "items/member.report/ledgers", ["assessment", "assessment"]),
     "items.member.report.ledgers"),
    ("unknown approval", lambda d: _set(d, "items/member.report/approval", "mayor"), "items.member.report.approval"),
    ("control character in a name", lambda d: _set(d, "items/member.report/name", "报到\u202e"),
     "items.member.report.name"),
    ("three decimals", lambda d: _set(d, "items/member.report/points", Decimal("1.005")),
     "items.member.report.points"),
    ("boolean as points", lambda d: _set(d, "items/member.report/points", True), "items.member.report.points"),
    ("cap on a deduction", lambda d: _set(d, "items/member.no_show/caps", {"month": 10}),
     "items.member.no_show.caps"),
    ("zero cap", lambda d: _set(d, "items/member.report/caps", {"month": 0}), "items.member.report.caps.month"),
    ("code of the wrong subject", lambda d: _set(d, "items/org.report/subject", "member"), "items.org.report"),
    ("badly formed code", lambda d: _set(d, "items/Member Report", d["items"]["member.report"]),
     "items.Member Report"),
    ("event to an unknown item", lambda d: _set(d, "events/no_show", "member.nothing"), "events.no_show"),
    ("required event missing", lambda d: _delete(d, "events/late"), "events.late"),
    ("event to the wrong subject", lambda d: _set(d, "events/org_report", "member.report"), "events.org_report"),
    ("no-show scored with an award", lambda d: _set(d, "events/no_show", "member.report"), "events.no_show"),
    ("lateness scored with an award", lambda d: _set(d, "events/late", "member.micro_wish"), "events.late"),
    ("report scored with a deduction", lambda d: _set(d, "events/member_report", "member.no_show"),
     "events.member_report"),
    ("activity hours scored with an item counted in times",
     lambda d: _set(d, "events/activity_hours", "member.micro_wish"), "events.activity_hours"),
    ("activity hours scored with an item needing approval",
     lambda d: _set(d, "events/activity_hours", "member.self_service_hour"), "events.activity_hours"),
    ("star award to an organization item", lambda d: _set(d, "events/star_award", "org.report"), "events.star_award"),
    ("star award scored with a deduction", lambda d: _set(d, "events/star_award", "member.no_show"),
     "events.star_award"),
    ("red flag award to a member item", lambda d: _set(d, "events/red_flag_award", "member.report"),
     "events.red_flag_award"),
    ("misspelt optional event", lambda d: _set(d, "events/star_awards", "member.report"), "events.star_awards"),
    ("falsified scored with an award", lambda d: _set(d, "events/falsified", "member.report"), "events.falsified"),
    ("unsorted grade bands", lambda d: _set(d, "grades/bands", list(reversed(d["grades"]["bands"]))),
     "grades.bands"),
    ("duplicate grade bands", lambda d: _set(d, "grades/bands/1", {"name": "优秀", "min_score": 75}),
     "grades.bands"),
    ("equal thresholds", lambda d: _set(d, "grades/bands/1", {"name": "较好", "min_score": 90}), "grades.bands"),
    ("veto to an unknown grade", lambda d: _set(d, "grades/vetoes/0/max_grade", "良好"),
     "grades.vetoes.0.max_grade"),
    ("unknown veto", lambda d: _set(d, "grades/vetoes/0/code", "late"), "grades.vetoes.0.code"),
    ("excellent share of zero", lambda d: _set(d, "grades/excellent_share_cap", 0), "grades.excellent_share_cap"),
    ("excellent share above one", lambda d: _set(d, "grades/excellent_share_cap", Decimal("1.5")),
     "grades.excellent_share_cap"),
    ("tie-breaks without id last", lambda d: _set(d, "stars/tie_breaks", ["id", "hours"]), "stars.tie_breaks"),
    ("tie-breaks without id", lambda d: _set(d, "stars/tie_breaks", ["hours", "micro_wishes"]), "stars.tie_breaks"),
    ("unknown tie-break", lambda d: _set(d, "stars/tie_breaks", ["age", "id"]), "stars.tie_breaks.0"),
    ("star share out of range", lambda d: _set(_set(d, "stars/quota_kind", "share"), "stars/quota", 2),
     "stars.quota"),
    ("fractional top-n", lambda d: _set(d, "stars/quota", Decimal("2.5")), "stars.quota"),
    ("disqualifying unknown item", lambda d: _set(d, "stars/disqualifying_items", ["member.nothing"]),
     "stars.disqualifying_items"),
    ("report rate above one", lambda d: _set(d, "red_flag/min_report_rate", Decimal("1.2")),
     "red_flag.min_report_rate"),
    ("exponential decay without half-life", lambda d: _set(d, "standing/half_life_days", None),
     "standing.half_life_days"),
    ("unknown decay kind", lambda d: _set(d, "standing/kind", "sigmoid"), "standing.kind"),
    ("expiry of zero months", lambda d: _set(d, "redeemable_expiry/validity_months", 0),
     "redeemable_expiry.validity_months"),
    ("bad timezone", lambda d: _set(d, "timezone", "UTC"), "timezone"),
    ("unknown top-level key", lambda d: _set(d, "bonus", 1), "bonus"),
    ("unknown item key", lambda d: _set(d, "items/member.report/colour", "red"), "items.member.report.colour"),
    ("unknown nested key", lambda d: _set(d, "stars/winners", 9), "stars.winners"),
    ("unknown subject cap", lambda d: _set(d, "monthly_positive_cap/branch", 10), "monthly_positive_cap.branch"),
    ("negative minimum", lambda d: _set(d, "minimums/member_activities_per_year", -1),
     "minimums.member_activities_per_year"),
    ("missing section", lambda d: _delete(d, "grades"), "grades"),
    ("missing item field", lambda d: _delete(d, "items/member.report/kind"), "items.member.report.kind"),
    ("item that is not a mapping", lambda d: _set(d, "items/member.report", 3), "items.member.report"),
]


@pytest.mark.parametrize(("mutate", "field"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_mistake_is_refused_with_the_field_named_in_chinese(mutate, field):
    errors = errors_of(mutate(default_document()))
    assert field in errors, errors
    assert all(CHINESE.search(message) for message in errors[field])


def test_all_mistakes_in_one_document_are_reported_together():
    document = _set(_set(default_document(), "timezone", "UTC"), "items/member.no_show/points", 5)
    assert {"timezone", "items.member.no_show.points"} <= set(errors_of(document))


def test_a_document_that_is_not_a_mapping_is_refused():
    assert set(errors_of(["items"])) == {"_document"}


# ---------------------------------------------------------------- reading text


def test_yaml_decimals_are_exact_never_floats():
    document = load_policy_text("share: 0.95\nsmall: 0.1\n")
    assert document == {"share": Decimal("0.95"), "small": Decimal("0.1")}
    assert all(isinstance(value, Decimal) for value in document.values())


def test_json_text_is_read_like_yaml():
    text = json.dumps(canonical_document(parse_policy(default_document())), ensure_ascii=False)
    assert parse_policy(load_policy_text(text)) == parse_policy(default_document())


@pytest.mark.parametrize("text", [
    "items: [unclosed",
    "just a string",
    "- a list",
    b"\xff\xfe not utf-8",
    "a: &x [1, 2]\nb: *x\n",
    "",
])
def test_unreadable_text_is_refused_under_document(text):
    with pytest.raises(PolicyInvalid) as caught:
        load_policy_text(text)
    assert set(caught.value.data["errors"]) == {"_document"}
    assert CHINESE.search(caught.value.data["errors"]["_document"][0])


def test_a_yaml_syntax_error_names_the_line():
    with pytest.raises(PolicyInvalid) as caught:
        load_policy_text("name: ok\nitems: [unclosed\n")
    assert "第 3 行" in caught.value.data["errors"]["_document"][0]


# ---------------------------------------------------------------- canonical form, immutability, lookups


def test_the_canonical_document_round_trips_to_the_same_policy_and_checksum():
    policy = parse_policy(default_document())
    canonical = canonical_document(policy)
    stored = json.loads(json.dumps(canonical))  # what a JSON column gives back
    assert parse_policy(stored) == policy
    assert checksum(stored) == checksum(canonical)


def test_the_canonical_document_fills_in_defaults():
    document = default_document()
    del document["items"]["member.report"]["ledgers"]
    del document["items"]["member.report"]["caps"]
    canonical = canonical_document(parse_policy(document))
    assert canonical["items"]["member.report"]["ledgers"] == ["assessment"]
    assert canonical["items"]["member.report"]["caps"] == {"day": None, "month": None, "quarter": None, "year": None}


def test_a_changed_point_value_changes_the_checksum():
    before = checksum(canonical_document(parse_policy(default_document())))
    after = checksum(canonical_document(parse_policy(_set(default_document(), "items/member.report/points", 4))))
    assert before != after


def test_a_parsed_policy_cannot_be_changed():
    policy = parse_policy(default_document())
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.name = "改过的"  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.items["member.report"] = policy.items["member.no_show"]  # type: ignore[index]


def test_an_unknown_item_code_is_a_key_error_and_a_422_naming_the_code():
    policy = parse_policy(default_document())
    with pytest.raises(UnknownItem) as caught:
        policy.item("member.flying")
    error = caught.value
    assert isinstance(error, KeyError) and isinstance(error, ServiceError)
    assert (error.status, error.code) == (422, "unknown_item")
    assert "member.flying" in error.message
