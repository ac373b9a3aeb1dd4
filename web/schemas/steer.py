"""What the steering routes answer (web/steer.py): assignments answer a Bead (web/schemas/beads.py),
pause and resume the dataclasses of store/steer.py."""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, maybe_str, required_str


class Pause(Open):
    by = required_str()
    reason = required_str()
    since = maybe_str()


class PauseState(Open):
    alias = required_str()
    #: null when the agent is not paused
    paused = fields.Nested(Pause, required=True, allow_none=True)


pause_state = PauseState()
