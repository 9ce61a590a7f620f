"""Long lists of plain dicts, dumped by their schema's own fields with marshmallow's per-value bookkeeping
compiled away.

For every value marshmallow looks the key up through ``get_value`` (dotted paths, attribute-or-item), checks for
``missing`` and dump defaults, and runs the hook machinery once per nested object. On a 50-row leaderboard page
(about 150 nested dumps and 650 values) that bookkeeping cost more than the values themselves (docs/benchmarks.md).
``compiled_dumper`` walks a schema's ``dump_fields`` once and then calls the same fields' ``_serialize`` on the
dict's values, so the output is the schema's — tests compare the two on every kind of row. It accepts only the
schemas for which that holds (no hooks, no dump defaults, no renamed attributes, no field that reads the whole
object), and refuses the others when the schema is compiled rather than dumping something different.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import marshmallow as ma

Dumper = Callable[[Mapping], dict]
_OBJECT_READERS = (ma.fields.Method, ma.fields.Function, ma.fields.Pluck, ma.fields.Constant)


def compiled_dumper(schema: ma.Schema) -> Dumper:
    """A function that dumps one plain dict exactly as ``schema.dump`` would (keys absent from the dict are left
    out, as marshmallow leaves out missing values)."""
    if any(schema._hooks.values()):  # marshmallow keeps the resolved pre/post-dump hooks here
        raise TypeError(f"{type(schema).__name__} has processing hooks; dump it with marshmallow")
    steps = tuple((name, field.data_key or name, _converter(field)) for name, field in schema.dump_fields.items())

    def dump(obj: Mapping) -> dict:
        return {key: convert(obj[name]) for name, key, convert in steps if name in obj}

    return dump


def _converter(field: ma.fields.Field) -> Callable[[Any], Any]:
    _refuse_unless_plain(field)
    if isinstance(field, ma.fields.Nested):
        inner, many = compiled_dumper(field.schema), field.many or field.schema.many
        return lambda value: None if value is None else [inner(v) for v in value] if many else inner(value)
    if isinstance(field, ma.fields.List) and isinstance(field.inner, ma.fields.Nested):
        each = _converter(field.inner)
        return lambda value: None if value is None else [each(v) for v in value]
    return functools.partial(_serialize_value, field)


def _serialize_value(field: ma.fields.Field, value: Any) -> Any:
    return field._serialize(value, field.name, None)


def _refuse_unless_plain(field: ma.fields.Field) -> None:
    overridden = type(field).get_value is not ma.fields.Field.get_value \
        or type(field).serialize is not ma.fields.Field.serialize
    if isinstance(field, _OBJECT_READERS) or overridden or field.attribute is not None \
            or field.dump_default is not ma.missing:
        raise TypeError(f"field {field.name!r} ({type(field).__name__}) reads more than its own value")


class CompiledList(ma.fields.List):
    """``List(Nested(Schema))`` for long lists of plain dicts (a leaderboard page): the same output and the same
    OpenAPI description as the plain List, dumped by ``compiled_dumper``."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        dump = self._compiled()
        return [dump(item) for item in value]

    def _compiled(self) -> Dumper:
        # Built on first use: the nested schema is resolved then, as marshmallow itself resolves it lazily.
        if getattr(self, "_dumper", None) is None:
            if not isinstance(self.inner, ma.fields.Nested):
                raise TypeError("CompiledList takes a Nested schema")
            self._dumper = compiled_dumper(self.inner.schema)
        return self._dumper
