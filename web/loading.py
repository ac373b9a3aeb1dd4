"""A request body schema whose `load` runs its fields without marshmallow's general machinery.

marshmallow's `Schema.load` builds an error store, a getter closure per field and the set of known
keys on every call, and looks up hooks it has none of: on `POST /v1/mail` that was about as much
as the fields' own checks. `Checked.load` runs the same field objects (`Field.deserialize`: the
same conversion, defaults and validators, so the limits are written once, on the schema) and hands
anything else to marshmallow: a body with an error or an unknown key (so every 422 is marshmallow's
own, word for word), a schema with hooks, `many`, `partial` or `unknown` given.
tests/test_web_loading.py holds the two paths equal.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, missing, types

Plan = list[tuple[str, str, Any]]


class Checked(Schema):
    """A flat body schema (no hooks, no dotted attributes) loaded by `load` below."""

    def load(self, data: Any, *, many: bool | None = None, partial: Any = None,
             unknown: types.UnknownOption | None = None) -> Any:
        plan: Plan | None = self.__dict__.get("_plan")
        if plan is None:
            plan = self.__dict__["_plan"] = self._compile()
        if not plan or many is not None or partial is not None or unknown is not None \
                or type(data) is not dict:
            return super().load(data, many=many, partial=partial, unknown=unknown)
        out = {}
        try:
            for key, name, field in plan:
                value = field.deserialize(data.get(key, missing), key, data)
                if value is not missing:
                    out[name] = value
        except ValidationError:
            return super().load(data)  # marshmallow's own error, with every field's message
        if not self._known.issuperset(data):
            return super().load(data)  # unknown keys: marshmallow's RAISE, INCLUDE or EXCLUDE
        return out

    def _compile(self) -> Plan:
        """(data key, result key, field) per load field; empty where `load` must be marshmallow's."""
        hooks = any(self._hooks.values())
        plan = [(field.data_key if field.data_key is not None else name, field.attribute or name, field)
                for name, field in self.load_fields.items()]
        if hooks or self.many or self.partial is not None or self.unknown != RAISE \
                or any("." in attribute for _, attribute, _ in plan):
            return []
        self._known = frozenset(key for key, _, _ in plan)
        return plan
