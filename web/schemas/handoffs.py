"""What the handoff routes answer (web/handoffs.py): handoffs and the prime view (store/handoffs.py)."""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, maybe_str, required_str
from web.schemas.beads import Bead


class Handoff(Open):
    id = fields.Int(required=True)
    from_ = fields.Str(data_key="from", required=True)
    to = maybe_str()
    body = required_str()
    created_at = required_str()


class LatestHandoff(Open):
    handoff = fields.Nested(Handoff, required=True, allow_none=True)


class Prime(Open):
    handoff = fields.Nested(Handoff, required=True, allow_none=True)
    #: {"by", "reason"} while the agent is paused, else null
    paused = fields.Dict(allow_none=True)
    #: open beads bound to the caller by a coordinator or a human, each with its `assignment`
    assigned = fields.List(fields.Nested(Bead))
    me = fields.Dict(required=True)
    playbook = fields.Dict(required=True)
    claims = fields.List(fields.Nested(Bead), required=True)
    ready = fields.List(fields.Nested(Bead), required=True)
    mail = fields.Dict(required=True)
    online = fields.List(fields.Dict(), required=True)


handoff, latest, prime = Handoff(), LatestHandoff(), Prime()
