"""Errors the use cases raise. Each carries the stable API ``code``, the HTTP status and a Chinese
message fit to show a person; the API layer turns them into the envelope unchanged."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "bad_request"
    message = "请求有误"

    def __init__(self, message: str | None = None, *, code: str | None = None, status: int | None = None,
                 data: dict | None = None, headers: dict | None = None) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.data = data
        self.headers = headers or {}
        super().__init__(self.message)


class Unauthorized(ServiceError):
    status, code, message = 401, "unauthorized", "请先登录"


class Forbidden(ServiceError):
    status, code, message = 403, "forbidden", "无权执行此操作"


class NotFound(ServiceError):
    status, code, message = 404, "not_found", "资源不存在"


class Conflict(ServiceError):
    status, code, message = 409, "conflict", "与当前状态冲突"


class InvalidTransition(Conflict):
    code, message = "invalid_transition", "当前状态不允许此操作"


class ValidationFailed(ServiceError):
    status, code, message = 422, "validation_failed", "提交的数据有误"

    def __init__(self, errors: dict, message: str | None = None, **kwargs) -> None:
        super().__init__(message, data={"errors": errors}, **kwargs)


class RateLimited(ServiceError):
    status, code, message = 429, "rate_limited", "请求过于频繁，请稍后再试"

    def __init__(self, message: str | None = None, *, retry_after: int = 60, **kwargs) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kwargs)


class ServiceUnavailable(ServiceError):
    status, code, message = 503, "service_unavailable", "服务暂时不可用，请稍后再试"
