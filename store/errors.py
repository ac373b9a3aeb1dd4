"""One error tree for beadwire.

Web maps `status_code`, the CLI maps `code` to exit codes, actors decide retries on the class.
Redis and Peewee errors are translated at the store boundary with `raise ... from`.
"""

from __future__ import annotations

from typing import Any


class BeadwireError(Exception):
    """Base of every error beadwire raises on purpose."""

    status_code = 500
    code = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class InvalidInput(BeadwireError):
    """Raised when a request is well-formed JSON but its content is not acceptable."""

    status_code = 422
    code = "invalid"


class Unauthorized(BeadwireError):
    """Raised when a request carries no token, or one the server does not know."""

    status_code = 401
    code = "unauthorized"


class Forbidden(BeadwireError):
    """Raised when a valid token asks for something its holder may not do."""

    status_code = 403
    code = "forbidden"


class RoleNeedsKey(Forbidden):
    """Raised when a workspace token asks to change its role to or from coordinator (a human's call)."""

    code = "role_needs_key"


class JoinKeyRefused(Forbidden):
    """Raised when a join key is unknown, of another project, or asked to register a coordinator."""

    code = "join_key_refused"


class JoinKeyGone(BeadwireError):
    """Raised when a join key has been used already or has expired: ask for a new one."""

    status_code = 410
    code = "join_key_gone"


class NotFound(BeadwireError):
    """Raised when an id does not exist in the caller's project (other tenants' ids included)."""

    status_code = 404
    code = "not_found"


class BeadNotFound(NotFound):
    """Raised when a bead reference resolves to nothing in the project."""


class WorkspaceNotFound(NotFound):
    """Raised when an alias or workspace id is unknown in the project."""


class ProjectNotFound(NotFound):
    """Raised when a project slug is unknown."""


class Conflict(BeadwireError):
    """Raised when the request contradicts the current state."""

    status_code = 409
    code = "conflict"


class ClaimConflict(Conflict):
    """Raised when a bead cannot be claimed: held by someone else, blocked, closed, or an epic."""

    code = "claim_conflict"


class NotHeld(Conflict):
    """Raised when a workspace releases a claim it does not hold."""

    code = "not_held"


class AliasTaken(Conflict):
    """Raised when init asks for an alias another workspace already owns."""

    code = "alias_taken"


class CycleError(Conflict):
    """Raised when a new dependency would close a cycle."""

    code = "cycle"


class AmbiguousBead(Conflict):
    """Raised when a bare bead id exists in several repos of the project."""

    code = "ambiguous"


class SyncRejected(InvalidInput):
    """Raised when an uploaded beads file is malformed; nothing of it is written."""

    code = "sync_rejected"


class SyncDeletes(Conflict):
    """Raised when a sync would tombstone many beads, or a claimed one, without allow_delete (nothing
    written)."""

    code = "sync_deletes"


class SyncNotFound(NotFound):
    """Raised when a sync id does not exist in the caller's project."""


class AlreadyUndone(Conflict):
    """Raised when a sync that was undone already is undone again."""

    code = "already_undone"


class Unavailable(BeadwireError):
    """Raised when Redis or the database cannot be reached."""

    status_code = 503
    code = "unavailable"


class StorageFull(Unavailable):
    """Raised when the database cannot write because its disk is full (nothing of the write is kept)."""

    status_code = 507
    code = "storage_full"


class EscalationNotFound(NotFound):
    """Raised when an escalation id does not exist in the caller's project, or is not the caller's."""


class AlreadyAnswered(Conflict):
    """Raised when a human answers an escalation that has been answered already."""

    code = "already_answered"


class PolicyVersionNotFound(NotFound):
    """Raised when a policy version number does not exist in the project."""


class InvalidPolicy(InvalidInput):
    """Raised when a policy bundle (markdown or JSON) cannot be parsed or breaks a limit."""

    code = "invalid_policy"


class RateLimited(BeadwireError):
    """Raised when a token, a project or a client address has used up its request rate (429)."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        #: whole seconds, for the `Retry-After` header
        self.retry_after = retry_after


class TooManyWaiters(RateLimited):
    """Raised when a token or a project already holds as many waiting requests and websockets as allowed
    (429)."""

    code = "too_many_waiters"


class RequestInProgress(Conflict):
    """Raised when a request with the same `Idempotency-Key` is being applied right now (retry later)."""

    code = "request_in_progress"


class AlreadyApplied(Conflict):
    """Raised when a keyed request was applied but its answer was never recorded (the server stopped)."""

    code = "already_applied"


class BadIdempotencyKey(BeadwireError):
    """Raised when an `Idempotency-Key` header is empty, too long or has characters outside
    [A-Za-z0-9._:-]."""

    status_code = 400
    code = "bad_idempotency_key"


class IdempotencyMismatch(BeadwireError):
    """Raised when an `Idempotency-Key` already used for one request comes with another method, path or
    body."""

    status_code = 422
    code = "idempotency_mismatch"
