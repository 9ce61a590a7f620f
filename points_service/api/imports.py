"""POST /admin/import/{regions,organizations,members}: being written."""

from points_service.api.core import Blueprint

blp = Blueprint("imports", __name__, url_prefix="/admin/import", description="花名册导入")
