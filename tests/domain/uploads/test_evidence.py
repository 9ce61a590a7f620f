"""Evidence uploads in the domain: a checked photo is stored with its owner, a bad one writes nothing, a daily
cap holds, and a self-report may cite only its own member's uploads."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.errors import Forbidden, RateLimited, ValidationFailed
from points_service.domain.uploads import DAILY_LIMIT, check_evidence_owner, evidence_file, store_evidence, upload_name
from points_service.models import EvidenceUpload
from tests.factories import make_world
from tests.factories.uploads import make_evidence_upload, make_image


@pytest.fixture
def world(app, tmp_path):
    app.instance_path = str(tmp_path)
    return make_world()


def stored_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(EvidenceUpload))


def test_a_checked_photo_is_kept_with_its_owner_type_and_size(world, tmp_path):
    content = make_image(kind="JPEG")
    upload = make_evidence_upload(world["users"]["alice"], content=content)
    assert (upload.user_id, upload.member_id) == (world["users"]["alice"].id, world["alice"].id)
    assert (upload.media_type, upload.size_bytes) == ("image/jpeg", len(content))
    path, media_type = evidence_file(upload.name)
    assert path.read_bytes() == content and media_type == "image/jpeg"
    assert path.parent == tmp_path / "evidence-uploads"


@pytest.mark.parametrize("content", [b"", b"not an image at all", make_image(kind="GIF"), make_image(20, 20),
                                     make_image()[:-40]])
def test_a_bad_file_is_refused_as_picture_invalid_and_nothing_is_kept(world, tmp_path, content):
    with pytest.raises(ValidationFailed) as refused:
        store_evidence(principal_for(world["users"]["alice"]), content)
    assert refused.value.code == "picture_invalid" and "file" in refused.value.data["errors"]
    assert stored_count() == 0
    assert not any((tmp_path / "evidence-uploads").glob("*"))


@pytest.mark.parametrize("kept", [0.3, 0.9])
def test_a_photo_cut_short_is_refused_whatever_its_type_and_nothing_is_kept(world, tmp_path, kept):
    for kind in ("JPEG", "PNG", "WEBP"):
        whole = make_image(640, 480, kind=kind, noise=True)
        with pytest.raises(ValidationFailed) as refused:
            store_evidence(principal_for(world["users"]["alice"]), whole[:int(len(whole) * kept)])
        assert refused.value.code == "picture_invalid", kind
        assert store_evidence(principal_for(world["users"]["alice"]), whole).size_bytes == len(whole)
    assert stored_count() == 3


def test_only_a_member_may_upload_evidence(world):
    with pytest.raises(Forbidden) as refused:
        store_evidence(principal_for(world["users"]["secretary"]), make_image())
    assert refused.value.code == "member_required"


def test_the_daily_cap_refuses_one_upload_more_and_frees_up_after_a_day(world):
    alice = principal_for(world["users"]["alice"])
    db.session.add_all(EvidenceUpload(name=f"{'a' * 30}{n:03d}.png", user_id=alice.user_id,
                                      member_id=alice.member_id, media_type="image/png", size_bytes=1,
                                      created_at=utcnow() - timedelta(hours=1)) for n in range(DAILY_LIMIT))
    db.session.commit()
    with pytest.raises(RateLimited):
        store_evidence(alice, make_image())
    assert store_evidence(alice, make_image(), now=utcnow() + timedelta(days=1)).id


def test_a_link_may_cite_only_the_actors_own_uploads(world):
    upload = make_evidence_upload(world["users"]["alice"])
    link = f"https://points.example.cn/api/v1/uploads/evidence/{upload.name}"
    assert upload_name(link) == upload.name and upload_name("https://img.example.cn/a.jpg") is None
    check_evidence_owner(principal_for(world["users"]["alice"]), [link, "https://img.example.cn/a.jpg"])
    with pytest.raises(ValidationFailed) as refused:
        check_evidence_owner(principal_for(world["users"]["bob"]), ["https://img.example.cn/a.jpg", link])
    assert refused.value.data["errors"]["evidence"] == ["第 2 项照片不是您本人上传的，请重新上传"]
    missing = link.replace(upload.name, "b" * 30 + ".png")
    with pytest.raises(ValidationFailed):
        check_evidence_owner(principal_for(world["users"]["alice"]), [missing])


def test_a_stored_name_only_ever_maps_into_the_upload_folder(world):
    assert evidence_file("../secret.png") is None
    assert evidence_file("a" * 30 + ".gif") is None
    assert evidence_file("a" * 30 + ".png") is None  # well-formed, but never stored
