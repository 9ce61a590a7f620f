"""A member's notifications: subscribe-message grants (/me/subscriptions) and the in-app inbox (/me/messages)."""

from __future__ import annotations

import marshmallow as ma

from points_service import ratelimit
from points_service.api.core import Blueprint
from points_service.api.fields import Instant, RowId
from points_service.api.pagination import PageArgs, page_of, paginate
from points_service.api.security import current_principal, login_required
from points_service.domain import notifications

blp = Blueprint("notifications", __name__, description="消息通知：订阅消息与站内消息")


class SubscriptionTemplateSchema(ma.Schema):
    key = ma.fields.String(metadata={"description": "稳定键，POST /me/subscriptions 时使用"})
    template_id = ma.fields.String(allow_none=True, metadata={"description": "wx.requestSubscribeMessage 的 tmplIds"})
    title = ma.fields.String()
    granted = ma.fields.Integer(metadata={"description": "尚未使用的订阅次数（每次发送消耗一次）"})


class SubscriptionsSchema(ma.Schema):
    templates = ma.fields.List(ma.fields.Nested(SubscriptionTemplateSchema))


class SubscriptionGrantArgs(ma.Schema):
    template_keys = ma.fields.List(ma.fields.String(validate=ma.validate.Length(min=1, max=40)), required=True,
                                   metadata={"description": "用户在 wx.requestSubscribeMessage 中接受的模板键"})


class SubscriptionGrantedSchema(ma.Schema):
    granted = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(),
                             metadata={"description": "每个模板现有的订阅次数"})


class InboxMessageSchema(ma.Schema):
    id = ma.fields.Integer()
    event = ma.fields.String()
    title = ma.fields.String()
    body = ma.fields.String()
    created_at = Instant()
    read_at = Instant(allow_none=True)
    link = ma.fields.String(metadata={"description": "小程序页面路径"})


class InboxArgs(PageArgs):
    unread = ma.fields.Boolean(load_default=False, metadata={"description": "只看未读"})
    before = RowId(load_default=None, metadata={
        "description": "只看比该消息 id 更早的消息（加载更多时传已显示的最后一条的 id；page、total 在此范围内计）"})


class InboxPageSchema(page_of(InboxMessageSchema)):
    unread = ma.fields.Integer(metadata={"description": "未读消息总数"})


@blp.route("/me/subscriptions")
@login_required
@blp.response(200, SubscriptionsSchema)
def own_subscriptions():
    """党员：可申请的订阅消息模板，以及每个模板尚余的订阅次数"""
    return notifications.subscriptions(current_principal())


@blp.route("/me/subscriptions", methods=["POST"])
@login_required
@ratelimit.limit("RATELIMIT_SUBSCRIPTION_PER_MEMBER", ratelimit.by_account)
@blp.arguments(SubscriptionGrantArgs)
@blp.response(201, SubscriptionGrantedSchema)
def grant_subscriptions(args):
    """党员：记录在 wx.requestSubscribeMessage 中接受的模板，每接受一次可发送一条（未知模板 422 template_unknown）"""
    return notifications.grant_subscriptions(current_principal(), args["template_keys"])


@blp.route("/me/messages")
@login_required
@blp.arguments(InboxArgs, location="query")
@blp.response(200, InboxPageSchema)
def own_messages(args):
    """党员：站内消息，最新的在前；unread=true 只看未读；before=消息 id 只看更早的（加载更多）"""
    principal = current_principal()
    statement = notifications.own_messages(principal, unread=args.pop("unread"), before=args.pop("before"))
    page = paginate(statement, **args)
    return {**page, "unread": notifications.unread_count(principal.member_id)}


@blp.route("/me/messages/<int:message_id>/read", methods=["POST"])
@login_required
@blp.response(200, InboxMessageSchema)
def read_message(message_id):
    """党员：标记消息已读（重复标记不变；他人的消息 404 message_not_found）"""
    return notifications.mark_read(current_principal(), message_id)
