"""Photo evidence for self-reports: a member uploads a photo (multipart ``file``) and cites the returned link in
POST /records' ``evidence``; the photo is served by its unguessable link, with nosniff and a CSP, like market
pictures."""

from __future__ import annotations

from urllib.parse import urlsplit

import marshmallow as ma
from flask import abort, request, send_file, url_for
from flask_smorest.fields import Upload

from points_service.api.core import Blueprint
from points_service.api.security import current_principal, login_required
from points_service.domain import uploads

blp = Blueprint("uploads", __name__, description="上传：自主上报的照片佐证")


class EvidenceUploadArgs(ma.Schema):
    file = Upload(required=True, metadata={"description": "JPEG/PNG/WebP，不超过 4 MB，宽高 64–8192 像素"})


class EvidenceUploadSchema(ma.Schema):
    url = ma.fields.Function(lambda upload: evidence_url(upload.name),
                             metadata={"description": "照片链接：写入 POST /records 的 evidence（仅本人可用）"})
    media_type = ma.fields.String()
    size_bytes = ma.fields.Integer()


def evidence_url(name: str) -> str:
    return url_for("uploads.evidence_file", name=name, _external=True)


def own_upload_link(text: str) -> bool:
    """A link to an evidence upload on this service (its owner is checked by the use case)."""
    parts = urlsplit(text)
    return (parts.scheme in ("http", "https") and parts.netloc == request.host and not parts.query
            and not parts.fragment and uploads.upload_name(text) is not None
            and parts.path == urlsplit(evidence_url(uploads.upload_name(text))).path)


@blp.route("/uploads/evidence", methods=["POST"])
@login_required
@blp.arguments(EvidenceUploadArgs, location="files")
@blp.response(201, EvidenceUploadSchema)
@blp.alt_response(422, description="picture_invalid：类型、大小或宽高不符")
def upload_evidence(files):
    """党员上传一张照片作为自主上报的佐证（multipart/form-data 的 file 字段）；返回的 url 写入 evidence"""
    return uploads.store_evidence(current_principal(), files["file"].read())


@blp.route("/uploads/evidence/<name>")
def evidence_file(name):
    """佐证照片（链接不可猜测；不套信封；Cache-Control: private，共享缓存不得保存）"""
    found = uploads.evidence_file(name)
    if found is None:
        abort(404)
    path, media_type = found
    response = send_file(path, mimetype=media_type, max_age=86400, conditional=True)
    # The photo may show people and is reachable by its link alone: the browser may keep it, shared caches
    # (proxies, CDNs) may not (send_file says public).
    response.cache_control.public = False
    response.cache_control.private = True
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    response.headers["Content-Disposition"] = "inline"
    return response
