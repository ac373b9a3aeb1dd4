"""Dashboard logins and sessions (Redis), and what a session may read.

A one-time link token or the project key opens a session. Both link and session records live in
Redis under the project's hash tag (every web process sees them; nothing in process memory),
addressed by the SHA-256 of a `<project id>.<secret>` value, so the secret itself is never stored.
A session carries its access level (`human`: may answer escalations; `viewer`: reads only), its
CSRF token, and its creation time (absolute lifetime); the Redis TTL is the idle timeout.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from store import Store, humans
from store.errors import NotFound, Unauthorized
from store.humans import Person, key_person
from store.models import Project, Workspace
from store.util import PROJECT_KEY_PREFIX, hash_secret, iso, now
from store.workspaces import authenticate_key

#: Seconds a login link works (once).
DEFAULT_LINK_TTL = 600
#: Seconds of inactivity after which a session ends, and its longest life whatever the activity.
DEFAULT_SESSION_IDLE = 8 * 3600
DEFAULT_SESSION_MAX = 7 * 24 * 3600


# -- logins and sessions ------------------------------------------------------------------------

def _split(value: str) -> tuple[int, str] | None:
    """(project id, digest) of a `<project id>.<secret>` token, None when malformed."""
    head, _, secret = (value or "").partition(".")
    if not head.isdigit() or len(secret) < 20 or len(value) > 200:
        return None
    return int(head), hash_secret(value)


@dataclass
class DashboardLinkView:
    """A one-time dashboard login link as the API shows it (web/schemas/humans.py)."""

    token: str
    path: str
    access: str  # human | viewer
    project: str
    expires_at: str | None  # never None: util.iso of a time


def mint_link(st: Store, project: Project, ws: Workspace | None,
              person: Person | None = None) -> DashboardLinkView:
    """A one-time login link token for `project`: `human` access when minted by a person (`ws` None:
    the project key, or a personal token whose session is that person's), else `viewer` access scoped
    to what workspace `ws` may read (`viewer_of`)."""
    token = f"{project.id}.{secrets.token_urlsafe(32)}"
    access = "human" if ws is None else "viewer"
    human_id = person.human_id if person is not None else None
    by = (person.name if person is not None else "project key") if ws is None else ws.alias
    record = {"project": project.id, "access": access, "by": by, "human": human_id,
              "viewer": None if ws is None else viewer_of(ws), "key": key_mark(project)}
    st.redis.put_secret(st.redis.keys.login_key(project.id, hash_secret(token)), record, DEFAULT_LINK_TTL)
    return DashboardLinkView(token, f"/login/{token}", access, project.slug, iso(now() + DEFAULT_LINK_TTL))


def check_link(st: Store, token: str) -> dict[str, Any]:
    """A login link's record while it is live, without using it (opening the link only shows a button:
    a chat app's link preview must not burn it).

    Raises:
        Unauthorized: unknown, used or expired link.
    """
    return _live_link(st, token, use=False)


def redeem_link(st: Store, token: str) -> tuple[str, dict[str, Any]]:
    """Use a login link (it works once); returns the new session's cookie value and record.

    Raises:
        Unauthorized: unknown, used or expired link.
    """
    record = _live_link(st, token, use=True)
    return open_session(st, record["project"], record["access"], record.get("by", ""), record.get("viewer"),
                        record.get("human"))


def _live_link(st: Store, token: str, use: bool) -> dict[str, Any]:
    parts = _split(token)
    record = st.redis.read_secret(st.redis.keys.login_key(*parts), use) if parts else None
    if parts is None or record is None or record.get("project") != parts[0]:
        raise Unauthorized("this login link is unknown, used or expired: run `wire dashboard` for a new one")
    project = Project.get_or_none(Project.id == record["project"])
    if project is not None and record.get("human") is not None:
        humans.live_person(record["human"])  # a person's link: their removal ends it, a key rotation does not
        return record
    if project is None or record.get("key") != key_mark(project):
        # a rotation ends every link and session made before it (sessions: `project_of`)
        raise Unauthorized("the project key was rotated since this link was made: run `wire dashboard` again")
    return record


def key_mark(project: Project) -> str:
    """What links and sessions remember of the project key they were made under (a hash prefix)."""
    return project.key_hash[:16]


def login_with_key(st: Store, key: str) -> tuple[str, dict[str, Any]]:
    """Open a human session with the project key.

    Raises:
        Unauthorized: not a project key, or an unknown one.
    """
    if not key.strip().startswith(PROJECT_KEY_PREFIX):
        raise Unauthorized("that is not a project key (bw_pk_...)")
    project = authenticate_key(st, key.strip())
    return open_session(st, project.id, "human", "project key", None)


def open_person_session(st: Store, person: Person) -> tuple[str, dict[str, Any]]:
    """A human session of a person (an invite redeemed in the browser, or their login link)."""
    return open_session(st, person.project_id, "human", person.name, None, person.human_id)


def open_session(st: Store, project_id: int, access: str, by: str,
                 viewer: dict[str, Any] | None, human_id: int | None = None) -> tuple[str, dict[str, Any]]:
    """A new session (its cookie value and record); `human` access acts, anything else only reads.

    Raises:
        Unauthorized: a read-only session without the workspace it reads as.
    """
    cookie = f"{project_id}.{secrets.token_urlsafe(32)}"
    if access != "human" and not viewer:
        raise Unauthorized("a read-only session needs the workspace it reads as")
    project = Project.get_by_id(project_id)
    record = {"project": project_id, "access": "human" if access == "human" else "viewer", "by": by,
              "viewer": None if access == "human" else viewer, "csrf": secrets.token_urlsafe(24),
              "created": now(), "key": key_mark(project), "human": human_id if access == "human" else None,
              "as": human_id if access == "human" else None}
    key = st.redis.keys.session_key(project_id, hash_secret(cookie))
    st.redis.put_secret(key, record, DEFAULT_SESSION_IDLE)
    return cookie, record


def switch_project(st: Store, cookie: str, record: dict[str, Any], slug: str) -> Project:
    """Make a person's session show another project of theirs (same identity: `humans.memberships`).

    Raises:
        NotFound: the person belongs to no project `slug` (or the session is no person's).
    """
    person = session_actor(record)[1]
    for project, member in humans.memberships(person) if person is not None and person.human_id else []:
        if project.slug == slug:
            parts = _split(cookie)
            assert parts is not None  # `record` was read through this cookie
            key = st.redis.keys.session_key(*parts)
            st.redis.put_secret(key, {**record, "as": member.human_id}, DEFAULT_SESSION_IDLE)
            return project
    raise NotFound(f"you belong to no project {slug}")


def session(st: Store, cookie: str | None) -> dict[str, Any] | None:
    """The live session a cookie names (its idle timeout renewed), else None."""
    parts = _split(cookie or "")
    if parts is None:
        return None
    key = st.redis.keys.session_key(*parts)
    record = st.redis.touch_secret(key, DEFAULT_SESSION_IDLE)
    if record is None or record.get("project") != parts[0]:
        return None
    if now() - float(record.get("created", 0)) > DEFAULT_SESSION_MAX:
        st.redis.drop_secret(key)
        return None
    return record


def close_session(st: Store, cookie: str | None) -> None:
    """End the session a cookie names (logout, or a session that no longer stands)."""
    parts = _split(cookie or "")
    if parts is not None:
        st.redis.drop_secret(st.redis.keys.session_key(*parts))


# -- who may read what ---------------------------------------------------------------------------

def viewer_of(ws: Workspace) -> dict[str, Any]:
    """A read-only reader acting as workspace `ws`: it sees what that workspace's token may read
    through the API (team, beads, policy, activity), but of private things only its own: mail and chat
    it sent or received, and its own escalations (all of them for a coordinator, as the API does)."""
    return {"ws": ws.id, "alias": ws.alias, "role": ws.role}


def redact(kind: str, data: dict[str, Any], viewer: dict[str, Any] | None) -> dict[str, Any]:
    """An event as `viewer` may see it (None: a human, who sees everything)."""
    if viewer is None:
        return data
    alias = viewer["alias"]
    private = kind in ("mail", "chat", "notice")
    if private and alias != data.get("from") and alias not in (data.get("to") or []):
        kept = ("id", "kind", "from", "to", "thread", "created_at", "ts")
        return {k: data[k] for k in kept if k in data} | {"redacted": True}
    if kind.startswith("escalation.") and viewer["role"] != "coordinator" and data.get("alias") != alias:
        return {k: data[k] for k in ("escalation", "alias", "status", "ts") if k in data} | {"redacted": True}
    return data


def project_of(record: dict[str, Any]) -> Project:
    """The project a session shows, while the session still stands for it (`session_actor`)."""
    return session_actor(record)[0]


def session_actor(record: dict[str, Any]) -> tuple[Project, Person | None]:
    """The project a session shows and the person acting through it (None: a workspace's read-only
    session), while the session still stands for them.

    A person's session stands while the person is not removed (a key rotation leaves it alone); it
    shows the project of the membership it switched to (`switch_project`), which must be live and the
    same person's too. A project key session stands until the key is rotated.

    Raises:
        Unauthorized: the project is gone, its key was rotated since the login (every project key
            session ends with it), the person was removed, or the workspace a read-only session reads
            as was revoked.
    """
    if record.get("human") is not None:
        home = humans.live_person(record["human"], "session")
        same = record.get("as") in (None, home.human_id)
        current = home if same else humans.live_person(record["as"], "session")
        if current.identity != home.identity:
            raise Unauthorized("this session no longer stands for that project: log in again")
        return Project.get_by_id(current.project_id), current
    project = _key_or_viewer_project(record)
    return project, key_person(project, "session") if record.get("access") == "human" else None


def _key_or_viewer_project(record: dict[str, Any]) -> Project:
    project = Project.get_or_none(Project.id == record["project"])
    if project is None:
        raise Unauthorized("this project no longer exists")
    if record.get("key") != key_mark(project):
        raise Unauthorized("the project key was rotated since you logged in: log in again")
    viewer = record.get("viewer")
    if viewer and not Workspace.select().where(Workspace.id == viewer["ws"],
                                               Workspace.revoked == False).exists():
        raise Unauthorized("the workspace this session reads as was revoked")
    return project
