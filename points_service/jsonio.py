"""JSON out: Chinese as-is, keys in schema order, exact decimals emitted as JSON numbers.

A Decimal with two places is written through float's shortest round-trip repr, which reproduces the
decimal text exactly for the magnitudes points have; all arithmetic stays in Decimal.
"""

from __future__ import annotations

from decimal import Decimal

from flask.json.provider import DefaultJSONProvider


class JSONProvider(DefaultJSONProvider):
    ensure_ascii = False
    sort_keys = False

    @staticmethod
    def default(o):
        if isinstance(o, Decimal):
            return int(o) if o == o.to_integral_value() else float(o)
        return DefaultJSONProvider.default(o)


def init_app(app) -> None:
    app.json_provider_class = JSONProvider
    app.json = JSONProvider(app)
