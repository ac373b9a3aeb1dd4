"""Personal human accounts: the persons of a project, their roles, invites and personal tokens.

Who acts for a request is one `Person`: the project key is the built-in person "project key"
(role admin, the bootstrap and break-glass credential), a personal token (`bw_ht_...`) or a
personal dashboard session is that person. `require_role` is the one permission check:

| role   | may                                                          |
|--------|--------------------------------------------------------------|
| viewer | read                                                         |
| lead   | also change work (answer, mail, release, assign, pause, ...) |
| admin  | also people, keys, policies and webhooks                     |

Invites and tokens are stored as SHA-256 hashes only. An invite works once, for DEFAULT_INVITE_TTL
seconds; redeeming it gives the person a new personal token (shown that once). Removing a person
clears their token hash and marks the row removed in one statement: every later request with the
token or a session of theirs (sessions re-read the row, store/sessions.py) is refused at once.
Rotating the project key ends the project key's sessions, not the persons' tokens or sessions: a
person's credential never was the key.

Several projects, one login: the rows of one person in several projects share an `identity`. A
person who redeems an invite while logged in as a person (a dashboard session, or `wire human login`
with their token) joins the new row to that identity; nothing else does (an email address is not
proof of anything, so two rows with the same email stay two logins).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from peewee import Expression, fn

from store import db
from store.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from store.models import Human, Project
from store.util import hash_secret, iso, new_secret, now

#: Prefixes of a personal token and of an invite.
HUMAN_TOKEN_PREFIX = "bw_ht_"
INVITE_PREFIX = "bw_hi_"
#: Seconds an invite works (once).
DEFAULT_INVITE_TTL = 7 * 24 * 3600
ROLES = ("viewer", "lead", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
#: The person the project key acts as.
KEY_PERSON = "project key"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")
#: What each role may do, in words (errors and docs).
CAN = {"viewer": "read", "lead": "change work", "admin": "manage people, keys, policies and webhooks"}


class NotAPerson(Forbidden):
    """Raised when a person's permission is checked for a caller who is no person (a workspace token)."""

    code = "not_a_person"


class HumanNotFound(NotFound):
    """Raised when no live person of that name is in the project."""


class HumanTaken(Conflict):
    """Raised when a person of that name (whatever its case) is already in the project."""

    code = "human_taken"


@dataclass(frozen=True)
class Person:
    """Who acts for a request: a person of `project_id` with `role`, through `credential`
    (`project_key`, `personal_token` or `session`); `human_id` is None for the project key."""

    name: str
    role: str
    project_id: int
    credential: str
    human_id: int | None = None
    identity: str = ""

    @property
    def label(self) -> str:
        """How a message or an answer names the person (`maria`, `project key`)."""
        return self.name


def key_person(project: Project, credential: str = "project_key") -> Person:
    return Person(KEY_PERSON, "admin", project.id, credential)


def person_of(row: Human, credential: str) -> Person:
    return Person(row.name, row.role, row.project_id, credential, row.id, row.identity)


def has_role(person: Person, role: str) -> bool:
    return _RANK.get(person.role, -1) >= _RANK[role]


def require_role(person: Person | None, role: str) -> Person:
    """The person when their role is `role` or above.

    Raises:
        NotAPerson: no person (a workspace token acts only as its workspace).
        Forbidden: the person's role is below `role`.
    """
    if person is None:
        raise NotAPerson("this needs a person (the project key or a personal token: --as NAME or "
                         "WIRE_HUMAN_TOKEN); a workspace token acts only as its workspace")
    if not has_role(person, role):
        raise Forbidden(f"{person.name} is {_a(person.role)}; this needs {_a(role)} (who may {CAN[role]})",
                        role=person.role, needs=role)
    return person


def _a(role: str) -> str:
    return f"an {role}" if role == "admin" else f"a {role}"


# -- persons ----------------------------------------------------------------------------------------

def _live(project_id: int) -> Expression:
    return (Human.project == project_id) & Human.removed_ts.is_null()


def find(project: Project, name: str) -> Human:
    """The live person `name` (any case) of `project`.  Raises: HumanNotFound."""
    row = Human.get_or_none(_live(project.id) & (fn.LOWER(Human.name) == name.lower()))
    if row is None:
        raise HumanNotFound(f"no person {name} in project {project.slug}: `wire human list` shows them")
    return row


def add(project: Project, name: str, email: str, role: str, by: Person) -> tuple[Human, str]:
    """A new person and their one-time invite (returned this once).

    Raises:
        InvalidInput: a bad name, email or role.
        HumanTaken: the name (any case) is taken.
    """
    _check(name, email, role)
    invite = new_secret(INVITE_PREFIX)
    with db.transaction():
        if Human.select().where(_live(project.id) & (fn.LOWER(Human.name) == name.lower())).exists():
            raise HumanTaken(f"{name} is already a person of project {project.slug}")
        row = Human.create(project=project.id, name=name, email=email, role=role,
                           identity=secrets.token_hex(16), invite_hash=hash_secret(invite),
                           invite_expires_ts=now() + DEFAULT_INVITE_TTL,
                           created_by=by.name, created_ts=now())
    return row, invite


def _check(name: str, email: str, role: str) -> None:
    if not NAME_RE.match(name) or name.lower() == KEY_PERSON:
        raise InvalidInput("a name is 1-64 letters, digits, `.`, `_` or `-`, starting with a letter or digit",
                           field="name")
    if email and not EMAIL_RE.match(email):
        raise InvalidInput(f"{email!r} is not an email address", field="email")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")


def reinvite(project: Project, name: str) -> tuple[Human, str]:
    """A new invite for a person (the old one stops working).  Raises: HumanNotFound."""
    row = find(project, name)
    invite = new_secret(INVITE_PREFIX)
    Human.update(invite_hash=hash_secret(invite), invite_expires_ts=now() + DEFAULT_INVITE_TTL).where(
        Human.id == row.id).execute()
    return row, invite


def remove(project: Project, name: str) -> HumanRemovedView:
    """Remove a person: their token, invite and sessions stop working at once.  Raises: HumanNotFound."""
    row = find(project, name)
    Human.update(removed_ts=now(), token_hash=None, invite_hash=None).where(Human.id == row.id).execute()
    return HumanRemovedView(row.name, True)


def people(project: Project) -> list[HumanView]:
    rows = Human.select().where(_live(project.id)).order_by(fn.LOWER(Human.name))
    return [human_view(r) for r in rows]


# -- what the API shows (web/schemas/humans.py dumps these) ---------------------------------------------

@dataclass
class HumanView:
    name: str
    email: str
    role: str  # viewer | lead | admin
    joined: bool
    invite_pending: bool
    created_at: str | None  # never None: util.iso of a time
    created_by: str


@dataclass
class HumanInviteView(HumanView):
    """A person with their one-time invite (shown this once)."""

    project: str
    invite: str
    invite_path: str
    invite_expires_at: str | None


@dataclass
class HumanRemovedView:
    name: str
    removed: bool


@dataclass
class HumanMeView:
    """The calling person, and every project of their login."""

    name: str
    role: str
    credential: str  # project_key | personal_token
    project: str
    #: `{"project": slug, "role": role}` for each
    projects: list[dict[str, str]]


@dataclass
class RedeemedView:
    """A redeemed invite: the person's personal token, shown this once."""

    name: str
    role: str
    project: str
    token: str


def human_view(row: Human) -> HumanView:
    return HumanView(row.name, row.email, row.role, row.token_hash is not None, row.invite_hash is not None,
                     iso(row.created_ts), row.created_by)


def invite_view(row: Human, project: Project, invite: str) -> HumanInviteView:
    """`add`'s or `reinvite`'s answer: the person and their invite."""
    person = human_view(row)
    return HumanInviteView(**vars(person), project=project.slug, invite=invite,
                           invite_path=f"/invite/{invite}", invite_expires_at=iso(row.invite_expires_ts))


def me(person: Person, project: Project) -> HumanMeView:
    return HumanMeView(person.name, person.role, person.credential, project.slug,
                       [{"project": p.slug, "role": m.role} for p, m in memberships(person)])


def redeemed(row: Human, token: str) -> RedeemedView:
    return RedeemedView(row.name, row.role, row.project.slug, token)


# -- invites and tokens --------------------------------------------------------------------------------

def check_invite(invite: str) -> Human:
    """The person a live invite is for, without using it.  Raises: Unauthorized."""
    row = None
    if invite.startswith(INVITE_PREFIX) and len(invite) < 200:
        row = Human.get_or_none(Human.invite_hash == hash_secret(invite))
    if row is None or row.removed_ts is not None or (row.invite_expires_ts or 0) < now():
        raise Unauthorized("this invite is unknown, used or expired: ask an admin for a new one "
                           "(`wire human invite NAME`)")
    return row


def redeem_invite(invite: str, joined_to: Person | None = None) -> tuple[Human, str]:
    """Use an invite (once): the person gets a new personal token (returned this once). `joined_to`:
    the person already logged in where the invite is opened; the new row joins their identity.

    Raises:
        Unauthorized: unknown, used or expired invite (also when two redeem it at once: one wins).
    """
    row = check_invite(invite)
    token = new_secret(HUMAN_TOKEN_PREFIX)
    identity = joined_to.identity if joined_to is not None and joined_to.identity else row.identity
    used = Human.update(invite_hash=None, invite_expires_ts=None, token_hash=hash_secret(token),
                        identity=identity).where(Human.id == row.id, Human.invite_hash == hash_secret(invite),
                                                 Human.removed_ts.is_null()).execute()
    if not used:
        raise Unauthorized("this invite was just used")
    row.identity, row.token_hash = identity, hash_secret(token)
    return row, token


def authenticate_token(token: str) -> tuple[Person, Project]:
    """The person and project of a personal token (read from SQL each time: removal is immediate).

    Raises:
        Unauthorized: unknown token, or its person was removed.
    """
    row = None
    if token.startswith(HUMAN_TOKEN_PREFIX) and len(token) < 200:
        row = Human.get_or_none(Human.token_hash == hash_secret(token))
    if row is None or row.removed_ts is not None:
        raise Unauthorized("unknown personal token, or its person was removed: ask an admin for an invite")
    return person_of(row, "personal_token"), Project.get_by_id(row.project_id)


def live_person(human_id: int, credential: str = "session") -> Person:
    """A person by row id while not removed (sessions re-check it each request).  Raises: Unauthorized."""
    row = Human.get_or_none(Human.id == human_id)
    if row is None or row.removed_ts is not None:
        raise Unauthorized("you were removed from this project")
    return person_of(row, credential)


def memberships(person: Person) -> list[tuple[Project, Person]]:
    """Every project the person belongs to (rows sharing their identity, not removed), by slug."""
    if person.human_id is None:
        return [(Project.get_by_id(person.project_id), person)]
    rows = (Human.select(Human, Project).join(Project)
            .where(Human.identity == person.identity, Human.removed_ts.is_null()).order_by(Project.slug))
    return [(r.project, person_of(r, person.credential)) for r in rows]
