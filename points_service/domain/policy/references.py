"""The checks of a policy document that look across its sections: item codes against their subject, events and
stars against the items they name. Run on the loaded sections by ``schema.PolicySchema``; each error is keyed by
the dotted path of the field that holds it."""

from __future__ import annotations

from points_service.domain.policy.model import StarRule, SubjectKind

CODE_PREFIX = {"member": "member.", "organization": "org."}
# The workflow's events: the subject (None: either) and the kind of the item each scores, so that a no-show never
# earns points nor a 业务之星 costs them. The first seven are required; any other name is a typo.
EVENT_ITEMS = {
    "member_report": ("member", "award"), "member_rereport": ("member", "award"),
    "org_report": ("organization", "award"), "activity_hours": ("member", "award"),
    "no_show": ("member", "deduction"), "no_checkout": ("member", "deduction"), "late": ("member", "deduction"),
    "falsified": (None, "deduction"), "org_meeting_absence": ("organization", "deduction"),
    "star_award": ("member", "award"), "red_flag_award": ("organization", "award"),
    "self_service_hours": ("member", "award"), "org_empty_quarter": ("organization", "deduction"),
}
REQUIRED_EVENTS = tuple(EVENT_ITEMS)[:7]
KIND_NAMES = {"award": "加分项", "deduction": "扣分项"}


def reference_errors(data: dict) -> dict:
    return {**_item_errors(data), **_cap_errors(data), **_event_errors(data), **_star_errors(data)}


def _item_errors(data: dict) -> dict:
    errors = {}
    items = data.get("items")
    if items is not None and not items:
        errors["items"] = ["至少需要一个积分项"]
    for code, item in (items or {}).items():
        prefix = CODE_PREFIX.get(item.get("subject"))
        if prefix and not code.startswith(prefix):
            errors[f"items.{code}"] = [f"{item['subject']} 的积分项代码应以“{prefix}”开头"]
    return errors


def _cap_errors(data: dict) -> dict:
    errors = {}
    for subject, cap in (data.get("monthly_positive_cap") or {}).items():
        if subject not in set(SubjectKind):
            errors[f"monthly_positive_cap.{subject}"] = ["应为 member 或 organization"]
        elif cap is not None and cap <= 0:
            errors[f"monthly_positive_cap.{subject}"] = ["上限应大于 0，或写 null 表示不限"]
    return errors


def _event_errors(data: dict) -> dict:
    items, events = data.get("items"), data.get("events")
    if items is None or events is None:
        return {}
    errors = {f"events.{name}": ["缺少必需的事件"] for name in REQUIRED_EVENTS if name not in events}
    for name, code in events.items():
        problem = f"积分项“{code}”不存在" if code not in items else _event_item_problem(name, items[code])
        if name not in EVENT_ITEMS:
            problem = f"未知事件，应为以下之一：{', '.join(EVENT_ITEMS)}"
        if problem:
            errors[f"events.{name}"] = [problem]
    return errors


def _event_item_problem(event: str, item: dict) -> str | None:
    """Why this item cannot score the event; an activity's hours, as an activity's own item: hourly and ``auto``."""
    subject, kind = EVENT_ITEMS.get(event, (None, None))
    if subject is not None and item.get("subject") != subject:
        return f"应指向 {subject} 的积分项"
    if kind is not None and item.get("kind") != kind:
        return f"应指向{KIND_NAMES[kind]}"
    if event == "activity_hours" and (item.get("unit"), item.get("approval")) != ("hours", "auto"):
        return "应指向按小时计、扫码签到签退自动确认（approval: auto）的积分项"
    return None


def _star_errors(data: dict) -> dict:
    items, stars = data.get("items"), data.get("stars")
    if items is None or not isinstance(stars, StarRule):  # a section with errors arrives half-loaded
        return {}
    unknown = sorted(stars.disqualifying_items - set(items))
    return {"stars.disqualifying_items": [f"积分项“{code}”不存在" for code in unknown]} if unknown else {}
