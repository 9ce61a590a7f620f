"""ECharts options as data (pure presentation): ``console.js`` draws every ``<div data-chart='{option}'>``
with the vendored ECharts. Numbers leave as floats: they are only drawn, never computed with."""

from __future__ import annotations

from decimal import Decimal

PALETTE = ["#c8102e", "#2563eb", "#16a34a", "#d97706", "#7c3aed"]


def _number(value: Decimal | int | float | None) -> float:
    return 0.0 if value is None else float(value)


def bar_chart(labels: list[str], values: list, *, name: str, horizontal: bool = True) -> dict:
    """Top of a board: the best at the top of a horizontal bar chart."""
    category = {"type": "category", "data": labels[::-1] if horizontal else labels,
                "axisLabel": {"width": 110, "overflow": "truncate"}}
    numbers = [_number(v) for v in (values[::-1] if horizontal else values)]
    return {
        "color": PALETTE, "animation": False, "tooltip": {"trigger": "axis"},
        "grid": {"left": 10, "right": 30, "top": 10, "bottom": 10, "containLabel": True},
        "xAxis": {"type": "value"} if horizontal else category,
        "yAxis": category if horizontal else {"type": "value"},
        "series": [{"type": "bar", "name": name, "data": numbers,
                    "label": {"show": True, "position": "right" if horizontal else "top"}}],
    }


def line_chart(categories: list[str], series: list[dict]) -> dict:
    """Points per month: one line per ``{"name", "values"}``."""
    return {
        "color": PALETTE, "animation": False, "tooltip": {"trigger": "axis"},
        "legend": {"data": [s["name"] for s in series], "top": 0},
        "grid": {"left": 10, "right": 20, "top": 36, "bottom": 10, "containLabel": True},
        "xAxis": {"type": "category", "data": categories, "boundaryGap": False},
        "yAxis": {"type": "value", "name": "分"},
        "series": [{"type": "line", "name": s["name"], "data": [_number(v) for v in s["values"]],
                    "smooth": False, "symbolSize": 6} for s in series],
    }

