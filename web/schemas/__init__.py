"""The marshmallow schemas of what the API answers, one module per resource (`beads.py`, ...).

They dump the store's domain objects (store/beadviews.py, ...) in the views, and web/openapi.py
describes the answers with the same classes, so the documented shape is the one sent. Objects accept
more properties than listed (`unknown = INCLUDE`): a bead keeps the unknown fields of its beads
record, and adding a field to an answer must not break clients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import INCLUDE, Schema, fields, missing, post_dump

from store.beadviews import ABSENT

Dumper = Callable[[Any], Any]


class Open(Schema):
    """An object that may carry more properties than listed.

    `dump` runs a function compiled once from the declared fields (`compile_dump`): a list of 200
    beads dumps in a few milliseconds instead of ~45 through marshmallow's general path, and gives the
    same document (tests/test_web_schemas.py holds the two paths equal).
    """

    class Meta:
        unknown = INCLUDE

    #: An open record (a bead, its dependencies and comments): the object's `extra` dict (its fields
    #: without a column, unknown ones included) is sent after this field, or first with "".
    EXTRA_AFTER: str | None = None

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        """A domain object's `ABSENT` field is a key the answer leaves out."""
        value = super().get_attribute(obj, attr, default)
        return missing if value is ABSENT else value

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        fast = self.__dict__.get("_fast")
        if fast is None:
            fast = self.__dict__["_fast"] = compile_dump(self)
        return [fast(item) for item in obj] if (self.many if many is None else many) else fast(obj)

    def marshmallow_dump(self, obj: Any, *, many: bool | None = None) -> Any:
        """marshmallow's own, general dump (what `dump` must equal)."""
        return super().dump(obj, many=many)

    @post_dump(pass_original=True)
    def _with_extra(self, out: dict[str, Any], obj: Any, **_: Any) -> dict[str, Any]:
        if self.EXTRA_AFTER is None:
            return out
        keys = list(out)
        cut = keys.index(self.EXTRA_AFTER) + 1 if self.EXTRA_AFTER else 0
        return {**{k: out[k] for k in keys[:cut]}, **obj.extra, **{k: out[k] for k in keys[cut:]}}


#: Fields whose value a domain object already holds as sent (marshmallow would copy or convert it).
_AS_IS = (fields.Str, fields.Int, fields.Float, fields.Bool, fields.Raw, fields.Dict)


def _field_dumper(field: fields.Field) -> Dumper | None:
    """How a field's value is sent: None for as it is, else a function of it."""
    if isinstance(field, Given) or (isinstance(field, fields.List) and isinstance(field.inner, _AS_IS)):
        return None
    if isinstance(field, fields.Nested) and isinstance(field.schema, Open):
        inner = compile_dump(field.schema)
        return (lambda values: [inner(v) for v in values]) if field.many else inner
    if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
        item = _field_dumper(field.inner)
        assert item is not None
        return lambda values: [item(v) for v in values]
    if isinstance(field, _AS_IS):
        return None
    raise TypeError(f"compile_dump does not know {type(field).__name__}")


def compile_dump(schema: Open) -> Dumper:
    """A function that dumps one object as `schema` declares: its fields in order, a field whose value
    is `ABSENT` (or missing) left out, None sent as null, then the schema's post_dump hooks."""
    steps = [(field.data_key or name, field.attribute or name, _field_dumper(field))
             for name, field in schema.dump_fields.items()]
    hooks = [(getattr(schema, name), options.get("pass_original", False))
             for name, hook_many, options in schema._hooks["post_dump"]
             if not hook_many and name != "_with_extra"]  # `extra` is merged by a step of its own
    extra_after = schema.EXTRA_AFTER
    if extra_after is not None:  # a step that merges the object's `extra` there
        at = [attr for _, attr, _ in steps].index(extra_after) + 1 if extra_after else 0
        steps.insert(at, ("", "", None))

    def dump(obj: Any) -> dict[str, Any]:
        plain = isinstance(obj, dict)
        out: dict[str, Any] = {}
        for key, attr, convert in steps:
            if not key:
                out.update(obj.extra)
                continue
            value = obj.get(attr, ABSENT) if plain else getattr(obj, attr, ABSENT)
            if value is ABSENT:
                continue
            out[key] = value if convert is None or value is None else convert(value)
        for hook, pass_original in hooks:
            out = hook(out, obj, many=False) if pass_original else hook(out, many=False)
        return out

    return _unrolled(steps, dump) if not hooks else dump


def _unrolled(steps: list[tuple[str, str, Dumper | None]], general: Dumper) -> Dumper:
    """`dump` with its loop over the fields written out as straight-line code (compiled once per
    schema): `GET /v1/status` dumps one object per workspace, 1,000 of them in a big team, and the
    loop's per-field overhead was a fifth of that answer's CPU. Dicts still take the general path."""
    names: dict[str, Any] = {"ABSENT": ABSENT, "general": general}
    body = ["def dump(obj):", "    if isinstance(obj, dict):", "        return general(obj)", "    out = {}"]
    for i, (key, attr, convert) in enumerate(steps):
        if not key:
            body.append("    out.update(obj.extra)")
            continue
        body += [f"    v = getattr(obj, {attr!r}, ABSENT)", "    if v is not ABSENT:"]
        if convert is None:
            body.append(f"        out[{key!r}] = v")
        else:
            names[f"c{i}"] = convert
            body.append(f"        out[{key!r}] = None if v is None else c{i}(v)")
    body.append("    return out")
    exec("\n".join(body), names)  # the source is built from our own schemas' field names, never input
    made: Dumper = names["dump"]
    return made


class Given(fields.Nested):
    """A nested object whose shape another module builds as a dict (not converted yet): documented by
    its schema, sent as it is."""

    def serialize(self, attr: str, obj: Any, accessor: Callable[[Any, str, Any], Any] | None = None,
                  **kwargs: Any) -> Any:
        return self.get_value(obj, attr, accessor=accessor)  # `missing` (no such key) stays missing


def required_str(**kw: Any) -> fields.Str:
    return fields.Str(required=True, **kw)


def maybe_str() -> fields.Str:
    return fields.Str(required=True, allow_none=True)


class ErrorBody(Open):
    code = required_str()
    message = required_str()


class Error(Schema):
    """Every error: `{"error": {"code", "message", ...details}}`."""

    error = fields.Nested(ErrorBody, required=True)
