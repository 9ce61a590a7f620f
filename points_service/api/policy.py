"""GET /policy, POST /policy/versions: being written."""

from points_service.api.core import Blueprint

blp = Blueprint("policy", __name__, url_prefix="/policy", description="积分政策")
