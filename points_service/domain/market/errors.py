"""The 积分超市's stable error codes, each with a Chinese message fit to show a member or an admin."""

from __future__ import annotations

from points_service.domain.errors import Conflict, NotFound, ServiceError


class ItemNotFound(NotFound):
    code, message = "item_not_found", "该商品不存在"


class ItemUnavailable(Conflict):
    code, message = "item_unavailable", "该商品已下架或不在兑换时间内"


class OutOfStock(Conflict):
    code, message = "out_of_stock", "该商品库存不足"


class LimitReached(Conflict):
    code, message = "limit_reached", "已达到该商品的每人兑换限额"


class MonthlyCeilingReached(Conflict):
    code, message = "monthly_ceiling_reached", "本月兑换积分已达上限"


class OrderInProgress(Conflict):
    code, message = "order_in_progress", "相同的兑换请求正在处理，请稍后查看订单"


class MemberInactive(Conflict):
    code, message = "member_inactive", "您的党员身份已停用，不能兑换商品"


class PickupCodesExhausted(ServiceError):
    status, code, message = 503, "pickup_code_exhausted", "未能生成取货码，请重试"


class InsufficientPoints(ServiceError):
    status, code, message = 422, "insufficient_points", "公益积分余额不足"


class OrderNotFound(NotFound):
    code, message = "order_not_found", "该兑换订单不存在"


class PickupCodeInvalid(NotFound):
    code, message = "pickup_code_invalid", "取货码无效、已使用或不属于您管理的范围"


class OrderClosed(Conflict):
    code, message = "order_not_open", "该订单已取货、取消或过期，不能再操作"


class StockUnlimited(ServiceError):
    status, code, message = 422, "stock_unlimited", "该商品不限库存，无需调整"


class StockWouldGoNegative(Conflict):
    code, message = "stock_negative", "调整后库存不能小于 0"
