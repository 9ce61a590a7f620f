"""POST /admin/import/{regions,organizations,members}: roster files (.xlsx or .csv) for admins and HR.

The file comes as the multipart/form-data field ``file``, or as the raw body with a CSV or XLSX content
type. Reading and validating it is the domain's job (``roster_import``); the view only hands over bytes.
"""

from __future__ import annotations

import io

import marshmallow as ma
from flask import current_app
from flask_smorest.fields import Upload
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import FileStorage, MultiDict

from points_service import ratelimit
from points_service.api.core import Blueprint, StrictParser, UnsupportedMediaType
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.domain.roster.importing import import_roster

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# A raw body has no filename, and the domain picks the format by extension: name it after its type.
RAW_BODY_NAMES = {"text/csv": "upload.csv", XLSX_MIME: "upload.xlsx"}


class UploadParser(StrictParser):
    """``location="files"`` that also accepts the file as the raw request body."""

    def load_files(self, req, schema):
        if req.mimetype in RAW_BODY_NAMES:
            upload = FileStorage(io.BytesIO(req.get_data()), filename=RAW_BODY_NAMES[req.mimetype],
                                 content_type=req.mimetype)
            return MultiDictProxy(MultiDict({"file": upload}), schema)
        if req.mimetype != "multipart/form-data" and req.get_data(cache=True):
            raise UnsupportedMediaType("请以 multipart/form-data 的 file 字段上传文件，"
                                       "或以 text/csv、xlsx 类型直接发送文件内容")
        return super().load_files(req, schema)


class UploadBlueprint(Blueprint):
    ARGUMENTS_PARSER = UploadParser()


blp = UploadBlueprint("imports", __name__, url_prefix="/admin/import", description="花名册导入")


class UploadArgs(ma.Schema):
    file = Upload(required=True, error_messages={"required": "请上传文件（表单字段 file）"},
                  metadata={"description": ".xlsx 或 .csv（UTF-8，可带 BOM），第一行为中文表头"})


class ImportQueryArgs(ma.Schema):
    dry_run = ma.fields.Boolean(load_default=False, metadata={"description": "只校验并返回报告，不写入任何数据"})


class RowErrorSchema(ma.Schema):
    row = ma.fields.Integer(metadata={"description": "表格中的行号（表头为第 1 行）"})
    field = ma.fields.String(allow_none=True, metadata={"description": "列名"})
    message = ma.fields.String()


class ImportReportSchema(ma.Schema):
    kind = ma.fields.String()
    dry_run = ma.fields.Boolean()
    created = ma.fields.Integer()
    updated = ma.fields.Integer()
    scheduled = ma.fields.Integer(metadata={"description": "生效日期晚于今天的停用：已登记，到期由任务执行"})
    unchanged = ma.fields.Integer()
    errors = ma.fields.List(ma.fields.Nested(RowErrorSchema), metadata={"description": "有效文件时为空"})


@blp.route("/<any(regions, organizations, members):kind>", methods=["POST"])
@login_required
@authorize_first("roster.import")
@ratelimit.limit("RATELIMIT_UPLOAD_PER_USER", ratelimit.by_account)
@blp.arguments(ImportQueryArgs, location="query")
@blp.arguments(UploadArgs, location="files")
@blp.response(200, ImportReportSchema)
@blp.alt_response(422, description="import_invalid：data.errors 列出每个有误的行（行号、列名、原因），未写入任何数据")
def import_file(query, upload, kind):
    """导入区划、组织或党员花名册（管理员全部；人事仅党员，且只能导入本单位的支部）

    文件以 multipart/form-data 的 file 字段上传，或以 text/csv、xlsx 类型直接作为请求体发送。
    文件有任何错误时不写入任何数据（422 import_invalid）；dry_run=1 只校验。
    """
    file = upload["file"]
    return import_roster(current_principal(), kind, file.read(), file.filename or "",
                         phone_key=current_app.config["PHONE_HASH_KEY"], dry_run=query["dry_run"])
