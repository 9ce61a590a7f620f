"""Photo evidence over HTTP: a member uploads a photo, gets its link, the link is served with safe headers, and
POST /records takes it as evidence — his own uploads only; wrong type, too big or not an image is a 422
``picture_invalid`` with nothing stored."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.models import EvidenceUpload, Record
from tests.factories import auth_header, make_world
from tests.factories.uploads import make_image

URL = "/api/v1/uploads/evidence"


@pytest.fixture
def world(app, tmp_path):
    app.instance_path = str(tmp_path)
    world = make_world()
    world["h"] = {name: auth_header(user) for name, user in world["users"].items()}
    return world


def upload(client, headers, content: bytes, filename="photo.png", field="file"):
    return client.post(URL, headers=headers, data={field: (io.BytesIO(content), filename)},
                       content_type="multipart/form-data")


def report(client, headers, evidence: list[str]):
    occurred = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    return client.post("/api/v1/records", headers=headers, json={
        "item_code": "member.self_service_hour", "occurred_at": occurred, "hours": 2,
        "description": "为独居老人代购药品", "evidence": evidence})


def stored() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(EvidenceUpload))


def test_an_uploaded_photo_comes_back_as_a_link_served_with_its_type_and_safe_headers(client, world):
    content = make_image(kind="WEBP")
    response = upload(client, world["h"]["alice"], content, "x.png")
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert data["media_type"] == "image/webp" and data["size_bytes"] == len(content)
    assert data["url"].startswith("http://localhost/api/v1/uploads/evidence/") and data["url"].endswith(".webp")
    served = client.get(data["url"])
    assert served.status_code == 200 and served.data == content and served.mimetype == "image/webp"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Security-Policy"] == "default-src 'none'"
    assert client.get(f"{URL}/..%2Finstance.png").status_code == 404


def test_an_evidence_photo_is_kept_by_the_browser_only_never_by_a_shared_cache(client, world):
    link = upload(client, world["h"]["alice"], make_image()).get_json()["data"]["url"]
    served = client.get(link)
    again = client.get(link, headers={"If-None-Match": served.headers["ETag"]})
    assert served.status_code == 200 and again.status_code == 304
    for response in (served, again):
        directives = {d.strip() for d in response.headers["Cache-Control"].split(",")}
        assert directives == {"private", "max-age=86400"}, response.headers["Cache-Control"]


def test_a_self_report_takes_the_members_own_uploaded_photo_as_evidence(client, world):
    link = upload(client, world["h"]["alice"], make_image()).get_json()["data"]["url"]
    response = report(client, world["h"]["alice"], [link, "https://img.example.cn/a.jpg"])
    assert response.status_code == 201
    assert response.get_json()["data"]["evidence"] == [link, "https://img.example.cn/a.jpg"]


def test_another_members_photo_or_a_forged_link_is_refused_and_nothing_is_filed(client, world):
    link = upload(client, world["h"]["alice"], make_image()).get_json()["data"]["url"]
    for evidence, reason in (([link], "本人"), ([link.replace("http://localhost", "http://elsewhere.test")], "https"),
                             ([link.rsplit("/", 1)[0] + "/" + "z" * 30 + ".png"], "本人")):
        response = report(client, world["h"]["bob"], evidence)
        body = response.get_json()
        assert (response.status_code, body["code"]) == (422, "validation_failed")
        assert reason in str(body["data"]["errors"]["evidence"])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Record)) == 0


def spelled_otherwise(link: str) -> list[str]:
    """The same upload's link as a browser or this service would still resolve it to the photo."""
    base, name = link.replace("http://localhost", "https://elsewhere.example.cn").rsplit("/", 1)
    backslashed = base.replace("/uploads/evidence", "/uploads\\evidence") + "\\" + name
    return [f"{base}/%{ord(name[0]):02X}{name[1:]}", f"{base}/./{name}", f"{base}/%2e/{name}",
            f"{base.replace('/evidence', '/%65vidence')}/{name}", f"{base}/x/../{name}", backslashed]


def test_another_members_photo_cited_by_a_link_spelled_otherwise_is_refused_and_nothing_is_filed(client, world):
    link = upload(client, world["h"]["alice"], make_image()).get_json()["data"]["url"]
    assert client.get(spelled_otherwise(link)[0].replace("https://elsewhere.example.cn", "")).status_code == 200
    for evidence in spelled_otherwise(link):
        response = report(client, world["h"]["bob"], [evidence])
        body = response.get_json()
        assert (response.status_code, body["code"]) == (422, "validation_failed"), evidence
        assert "本人" in str(body["data"]["errors"]["evidence"]), evidence
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Record)) == 0
    assert report(client, world["h"]["alice"], spelled_otherwise(link)[:1]).status_code == 201


BAD_FILES = [
    ("not an image", b"plain text, not a picture", "a.png"),
    ("a GIF", make_image(kind="GIF"), "a.gif"),
    ("too small", make_image(16, 16), "a.png"),
    ("truncated", make_image()[:-40], "a.png"),
    ("too big", b"\x89PNG\r\n\x1a\n" + b"0" * (4 * 1024 * 1024 + 1), "a.png"),
]


@pytest.mark.parametrize(("what", "content", "filename"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_a_bad_file_is_a_422_picture_invalid_with_a_chinese_reason_and_nothing_stored(
        client, world, what, content, filename):
    response = upload(client, world["h"]["alice"], content, filename)
    body = response.get_json()
    assert (response.status_code, body["code"]) == (422, "picture_invalid"), what
    assert any("\u4e00" <= char <= "\u9fff" for char in body["message"])
    assert "file" in body["data"]["errors"]
    assert stored() == 0


def test_a_missing_file_field_is_a_field_error_and_only_members_upload(client, world):
    missing = upload(client, world["h"]["alice"], make_image(), field="picture")
    assert (missing.status_code, missing.get_json()["code"]) == (422, "validation_failed")
    assert "file" in missing.get_json()["data"]["errors"]
    secretary = upload(client, world["h"]["secretary"], make_image())
    assert (secretary.status_code, secretary.get_json()["code"]) == (403, "member_required")
    assert upload(client, {}, make_image()).status_code == 401
    assert stored() == 0
