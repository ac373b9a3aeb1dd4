"""What `POST /v1/join-keys` answers (web/joinkeys.py): store/joinkeys.py `JoinKeyMade`."""

from __future__ import annotations

from web.schemas import Open, required_str


class JoinKeyMade(Open):
    project = required_str()
    join_key = required_str()  # bw_jk_..., shown this once
    expires_at = required_str()
    join = required_str()  # the command the agent runs


join_key_made = JoinKeyMade()
