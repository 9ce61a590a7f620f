"""GET /api/v1/policy and POST /api/v1/policy/versions (YAML and JSON bodies)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import yaml

from config.settings import DEFAULT_POLICY_FILE
from points_service.domain.periods import LOCAL_TZ
from tests.factories import auth_header, make_world

POLICY = "/api/v1/policy"
VERSIONS = "/api/v1/policy/versions"
DEFAULT_YAML = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")


@pytest.fixture
def world(app):
    return make_world()


def as_user(world, who: str) -> dict:
    return auth_header(world["users"][who])


def tomorrow() -> str:
    return (datetime.now(LOCAL_TZ) + timedelta(days=1)).isoformat(timespec="seconds")


def yaml_with_hour_points(points: int) -> str:
    document = yaml.safe_load(DEFAULT_YAML)
    document["items"]["member.activity_hour"]["points"] = points
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


def post_yaml(client, world, text: str, who: str = "admin", **query):
    query.setdefault("effective_from", tomorrow())
    return client.post(VERSIONS, data=text.encode("utf-8"), content_type="application/yaml",
                       query_string=query, headers=as_user(world, who))


def post_json(client, world, document, who: str = "admin", **fields):
    body = {"effective_from": tomorrow(), "document": document, **fields}
    return client.post(VERSIONS, json=body, headers=as_user(world, who))


# ---------------------------------------------------------------- reading


def test_any_signed_in_member_reads_the_policy_in_force(client, world):
    response = client.get(POLICY, headers=as_user(world, "alice"))
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert (data["version"], data["effective_from"]) == (1, "2000-01-01T00:00:00+08:00")
    hour = next(item for item in data["items"] if item["code"] == "member.activity_hour")
    assert hour == {
        "code": "member.activity_hour", "name": "志愿服务（每小时）", "subject": "member", "kind": "award",
        "points": 1, "unit": "hours", "max_units_per_fact": 4, "ledgers": ["assessment", "redeemable"],
        "approval": "auto", "caps": {"day": 8, "month": None, "quarter": None, "year": None}, "category": "服务",
    }


def test_the_policy_shows_its_rules(client, world):
    data = client.get(POLICY, headers=as_user(world, "alice")).get_json()["data"]
    assert data["grades"]["bands"][0] == {"name": "优秀", "min_score": 90}
    assert data["grades"]["excellent_share_cap"] == 0.2
    assert data["stars"]["tie_breaks"][-1] == "id"
    assert data["standing"]["kind"] == "exponential"
    assert data["assessment_reset"] == {"every": "year"}
    assert data["redeemable_expiry"] == {"validity_months": 12}
    assert data["red_flag"]["min_report_rate"] == 0.95
    assert data["monthly_positive_cap"] == {"member": 30, "organization": None}
    assert data["events"]["no_show"] == "member.no_show"


def test_anonymous_callers_are_401(client, app):
    assert client.get(POLICY).status_code == 401
    assert client.post(VERSIONS, json={}).status_code == 401


def test_a_specific_version_can_be_read(client, world):
    assert post_yaml(client, world, yaml_with_hour_points(2)).status_code == 201
    current = client.get(POLICY, headers=as_user(world, "alice")).get_json()["data"]
    asked = client.get(POLICY, query_string={"version": 2}, headers=as_user(world, "alice")).get_json()["data"]
    assert current["version"] == 1  # version 2 takes effect tomorrow
    assert asked["version"] == 2
    assert next(i for i in asked["items"] if i["code"] == "member.activity_hour")["points"] == 2


def test_an_absent_version_is_404_and_a_bad_one_422(client, world):
    assert client.get(POLICY, query_string={"version": 99}, headers=as_user(world, "alice")).status_code == 404
    assert client.get(POLICY, query_string={"version": 0}, headers=as_user(world, "alice")).status_code == 422


# ---------------------------------------------------------------- publishing


def test_an_admin_publishes_a_yaml_policy(client, world):
    response = post_yaml(client, world, yaml_with_hour_points(2), note="提高志愿服务分值")
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert (data["version"], data["note"]) == (2, "提高志愿服务分值")
    assert data["effective_from"].endswith("+08:00") and len(data["checksum"]) == 64


def test_an_admin_publishes_a_json_policy(client, world):
    document = yaml.safe_load(DEFAULT_YAML)
    response = post_json(client, world, document, note="JSON 发布")
    assert response.status_code == 201
    assert response.get_json()["data"]["version"] == 2


def test_an_invalid_yaml_policy_is_422_naming_the_field(client, world):
    response = post_yaml(client, world, yaml_with_hour_points(-1))
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "policy_invalid"
    assert list(body["data"]["errors"]) == ["items.member.activity_hour.points"]


def test_an_invalid_json_policy_is_422_naming_the_field(client, world):
    document = yaml.safe_load(DEFAULT_YAML)
    document["events"]["no_show"] = "member.nothing"
    body = post_json(client, world, document).get_json()
    assert body["code"] == "policy_invalid" and "events.no_show" in body["data"]["errors"]


def test_unparsable_yaml_is_422_under_document(client, world):
    body = post_yaml(client, world, "items: [unclosed").get_json()
    assert body["code"] == "policy_invalid" and list(body["data"]["errors"]) == ["_document"]


def test_a_yaml_body_needs_its_effective_date_in_the_query(client, world):
    response = client.post(VERSIONS, data=DEFAULT_YAML.encode(), content_type="application/yaml",
                           headers=as_user(world, "admin"))
    assert response.status_code == 422
    assert "effective_from" in response.get_json()["data"]["errors"]


def test_a_json_body_refuses_unknown_fields(client, world):
    response = post_json(client, world, yaml.safe_load(DEFAULT_YAML), version=7)
    assert response.status_code == 422
    assert "version" in response.get_json()["data"]["errors"]


def test_an_effective_date_in_the_past_is_refused(client, world):
    yesterday = (datetime.now(LOCAL_TZ) - timedelta(days=1)).isoformat(timespec="seconds")
    response = post_yaml(client, world, DEFAULT_YAML, effective_from=yesterday)
    assert response.status_code == 422
    assert "effective_from" in response.get_json()["data"]["errors"]


@pytest.mark.parametrize("who", ["alice", "secretary", "community_admin", "hr"])
def test_only_admins_publish(client, world, who):
    assert post_yaml(client, world, DEFAULT_YAML, who=who).status_code == 403
    assert post_json(client, world, yaml.safe_load(DEFAULT_YAML), who=who).status_code == 403


def test_other_body_types_are_415(client, world):
    response = client.post(VERSIONS, data=json.dumps({"a": 1}), content_type="text/plain",
                           headers=as_user(world, "admin"))
    assert response.status_code == 415
