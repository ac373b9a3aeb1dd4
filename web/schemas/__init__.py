"""The marshmallow schemas of what the API answers, one module per resource (`beads.py`, ...).

They dump the store's domain objects (store/beadviews.py, ...) in the views, and web/openapi.py
describes the answers with the same classes, so the documented shape is the one sent. Objects accept
more properties than listed (`unknown = INCLUDE`): a bead keeps the unknown fields of its beads
record, and adding a field to an answer must not break clients.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, fields, missing

from store.beadviews import ABSENT


class Open(Schema):
    """An object that may carry more properties than listed."""

    class Meta:
        unknown = INCLUDE

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        """A domain object's `ABSENT` field is a key the answer leaves out."""
        value = super().get_attribute(obj, attr, default)
        return missing if value is ABSENT else value


class Given(fields.Nested):
    """A nested object whose shape another module builds as a dict (not converted yet): documented by
    its schema, sent as it is."""

    def _serialize(self, nested_obj: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return nested_obj


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
