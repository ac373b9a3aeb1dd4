"""Identity and presence: projects, repos, workspaces, tokens, heartbeats, team status."""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import unicodedata
from typing import Any

import peewee

from store import Store, db, joinkeys, outbox, queries
from store.acting import HUMAN_ROLE
from store.beadviews import ABSENT, ClaimView
from store.claims import epics_of, is_stale
from store.config import Settings
from store.errors import (
    AliasTaken,
    Forbidden,
    InvalidInput,
    RoleNeedsKey,
    StorageFull,
    Unauthorized,
    Unavailable,
)
from store.gitstate import claim_git, idle_minutes_setting, idle_since, idle_view, presence_git
from store.limits import rates
from store.models import Claim, Project, Repo, Workspace
from store.queries import Member
from store.redis import NO_RATE, Beat, Rate
from store.redis.base import compact
from store.repos import normalise_origin, repo_name
from store.teamviews import InitView, ProjectRef, ProjectView, StatusView, WorkspaceView
from store.util import (
    PROJECT_KEY_PREFIX,
    WORKSPACE_TOKEN_PREFIX,
    alias_key,
    hash_secret,
    iso,
    new_secret,
    now,
)

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Readable first halves of default aliases (`<name>-<role>`).
NAMES = ("ada", "bolt", "cedar", "dune", "ember", "fern", "gale", "hazel", "iris", "juno", "kite", "lark",
         "moss", "nova", "opal", "pike", "quill", "reed", "sage", "tide", "umber", "vale", "wren", "yarrow",
         "zephyr", "aster", "birch", "coral", "delta", "elm", "flint", "grove", "heron", "ivy", "jade",
         "koa", "lumen", "maple", "nimbus", "onyx", "pebble", "quartz", "rowan", "slate", "thorn")
DEFAULT_ROLE = "developer"
#: Distinct (workspace, alias, role, human, branch, host) whose beat texts one process keeps (`_beat_texts`).
DEFAULT_BEAT_TEXTS_CACHED = 4096
#: The role that reads every escalation (with the other agents' recent mail attached): only a human
#: (the project key) moves a workspace into it or out of it.
COORDINATOR = "coordinator"


def init_workspace(st: Store, slug: str, bearer: str, origin: str, alias: str | None, role: str | None,
                   human: str, hostname: str, path: str, may_create: bool = True, branch: str = "",
                   seen: str | None = None) -> InitView:
    """Register (or re-register) a worktree as a workspace of project `slug`.

    A new project is created with a fresh project key (returned once), if `may_create` (the web
    decides: web/identity.py). Joining an existing one needs that key; re-running init needs the
    workspace's own token. An init is the workspace's first beat: it is online (on `branch`) at once,
    not only after its next command (`seen`: as `heartbeat`); `rebuild` in the answer says the beat
    asked for the project's mailboxes to be rebuilt.

    Raises:
        Forbidden: the project exists and the bearer is neither its key nor a workspace token of it;
            or it does not exist and the caller may not create projects.
        AliasTaken: the alias belongs to another workspace.
    """
    if not SLUG_RE.match(slug):
        raise InvalidInput("project must be 1-64 lowercase letters, digits, '-' or '_'")
    if alias is not None:
        alias = normal_alias(alias)
    if role == HUMAN_ROLE:
        raise InvalidInput(f"role {HUMAN_ROLE!r} is kept for the people acting from the dashboard; "
                           "pick another")
    canonical = normalise_origin(origin)
    project = Project.get_or_none(Project.slug == slug)
    if bearer.startswith(WORKSPACE_TOKEN_PREFIX):
        holder = queries.token_holder(hash_secret(bearer))  # the lookup `authenticate` makes
        ws = holder.workspace if holder is not None else None
        if ws is not None and project is not None and ws.project_id == project.id:
            answer = _reinit(st, ws, project, bearer, canonical, alias, role, human, hostname, path)
            answer.workspace, answer.rebuild = _arrive(st, ws, canonical, branch, seen)
            return answer
    if joinkeys.is_join_key(bearer):
        answer, ws = _join_with_key(project, slug, bearer, canonical, alias, role or DEFAULT_ROLE, human,
                                    hostname, path)
        answer.workspace, answer.rebuild = _arrive(st, ws, canonical, branch, seen)
        return answer
    project_key = ABSENT
    if project is None:
        if not may_create:
            raise Forbidden("creating a project on this server needs its admin token "
                            "(`wire init --admin-token` or WIRE_ADMIN_TOKEN; the server's operator has it)")
        project, project_key = _create_project(slug)
    elif not bearer or hash_secret(bearer) != project.key_hash:
        raise Forbidden(f"project {slug} exists: joining it needs its project key "
                        "(--key or WIRE_PROJECT_KEY)")
    token, role = new_secret(WORKSPACE_TOKEN_PREFIX), role or DEFAULT_ROLE
    with db.transaction() as uow:
        repo = _repo(project, canonical)
        ws = _create_workspace(project, repo, alias, role, human, hostname, path, token)
        outbox.record(uow, project.id, "workspace.joined",
                      {"alias": ws.alias, "role": role, "repo": canonical}, workspace_id=ws.id)
    arrived, rebuild = _arrive(st, ws, repo.canonical, branch, seen)
    return InitView(project_view(project), arrived, token, project_key, created=True, rebuild=rebuild)


def _arrive(st: Store, ws: Workspace, repo: str, branch: str, seen: str | None) -> tuple[WorkspaceView, bool]:
    """The first beat of a (re-)registered workspace: its view, online on `branch`, and whether the
    project's mailboxes must be rebuilt (the beat asked for it: the caller sends the rebuild, as
    `web.common.authenticate` does). Best effort: the workspace is committed and its token is in this
    answer only, so a beat that fails here (Redis down) leaves it offline until its next command
    rather than failing the init."""
    try:
        beat = heartbeat(st, ws, branch, ws.hostname, seen, charge=False)  # the init paid by address
    except Unavailable as exc:
        logging.getLogger("beadwire.presence").warning("first beat of workspace %s failed: %s", ws.id, exc)
        return workspace_view(ws, repo), False
    return workspace_view(ws, repo, (now(), {"branch": branch[:200], "host": ws.hostname})), beat.rebuild


def _join_with_key(project: Project | None, slug: str, key: str, canonical: str, alias: str | None, role: str,
                   human: str, hostname: str, path: str) -> tuple[InitView, Workspace]:
    """A new workspace registered with a single-use join key (store/joinkeys.py), used up in the
    same transaction: the init's answer, and the workspace."""
    row = joinkeys.check(project, slug, key, role)
    assert project is not None  # `check` refuses a key for a project that does not exist
    token = new_secret(WORKSPACE_TOKEN_PREFIX)
    with db.transaction() as uow:
        repo = _repo(project, canonical)
        ws = _create_workspace(project, repo, alias, role, human, hostname, path, token)
        joinkeys.consume(row, ws)
        joined = {"alias": ws.alias, "role": role, "repo": canonical, "join_key_by": row.created_by}
        outbox.record(uow, project.id, "workspace.joined", joined, workspace_id=ws.id)
    return InitView(project_view(project), workspace_view(ws, repo.canonical), token, created=True), ws


def _create_project(slug: str) -> tuple[Project, str]:
    key = new_secret(PROJECT_KEY_PREFIX)
    try:
        with db.transaction():
            project = Project.create(slug=slug, name=slug, key_hash=hash_secret(key), created_ts=now())
    except peewee.IntegrityError:
        # two first inits raced: the other one created it, so this caller must hold the key
        raise Forbidden(f"project {slug} exists: joining it needs its project key") from None
    return project, key


def _repo(project: Project, canonical: str) -> Repo:
    repo = Repo.get_or_none(Repo.project == project.id, Repo.canonical == canonical)
    if repo is None:
        (Repo.insert(project=project.id, canonical=canonical, name=repo_name(canonical))
         .on_conflict_ignore().execute())
        repo = Repo.get(Repo.project == project.id, Repo.canonical == canonical)
    return repo


def _create_workspace(project: Project, repo: Repo, alias: str | None, role: str, human: str,
                      hostname: str, path: str, token: str) -> Workspace:
    chosen = alias or _free_alias(project, role)
    if _alias_taken(project, chosen):
        raise AliasTaken(f"alias {chosen} is taken in project {project.slug}; choose another with --alias")
    ts = now()
    try:
        with db.database.atomic():  # savepoint: a lost alias race must not abort the caller's transaction
            return Workspace.create(project=project.id, repo=repo.id, alias=chosen, role=role, human=human,
                                    hostname=hostname, path=path, token_hash=hash_secret(token),
                                    created_ts=ts, last_seen_ts=ts)
    except peewee.IntegrityError:
        raise AliasTaken(f"alias {chosen} is taken in project {project.slug}; "
                         "choose another with --alias") from None


def normal_alias(alias: str) -> str:
    """An alias as it is stored: NFKC-normalised (`Ａｌｉｃｅ` is `Alice`), then 1-64 ASCII letters,
    digits, '.', '-' or '_'.

    Raises:
        InvalidInput: anything else.
    """
    alias = unicodedata.normalize("NFKC", alias)
    if not ALIAS_RE.fullmatch(alias):
        raise InvalidInput("alias must be 1-64 letters, digits, '.', '-' or '_'")
    return alias


def _alias_taken(project: Project, alias: str, but: int | None = None) -> bool:
    """Whether another workspace of the project (`but`: not this one) has `alias` in any case."""
    same = peewee.fn.LOWER(Workspace.alias) == alias_key(alias)
    query = Workspace.select().where(Workspace.project == project.id, same)
    return (query.where(Workspace.id != but) if but is not None else query).exists()


def _free_alias(project: Project, role: str) -> str:
    aliases = Workspace.select(Workspace.alias).where(Workspace.project == project.id).tuples()
    taken = {alias_key(a) for (a,) in aliases}
    suffix = re.sub(r"[^a-z0-9]+", "-", role.lower()).strip("-") or "agent"
    names = list(NAMES)
    random.shuffle(names)
    for name in names:
        if f"{name}-{suffix}" not in taken:
            return f"{name}-{suffix}"
    n = 2
    while f"{names[0]}{n}-{suffix}" in taken:
        n += 1
    return f"{names[0]}{n}-{suffix}"


def _reinit(st: Store, ws: Workspace, project: Project, token: str, canonical: str, alias: str | None,
            role: str | None, human: str, hostname: str, path: str) -> InitView:
    """Same worktree, same identity: refresh the descriptive fields, keep the token.

    Raises:
        RoleNeedsKey: the role would change to or from coordinator (that takes the project key).
        AliasTaken: the new alias belongs to another workspace.
    """
    if crosses_coordinator(ws.role, role):
        raise RoleNeedsKey(f"only a human changes a role to or from {COORDINATOR}: with the project key, "
                           f"`wire workspace role {ws.alias} {role}` (PUT /v1/workspaces/{ws.alias}/role)")
    try:
        with db.transaction():
            if alias and alias != ws.alias:
                if _alias_taken(project, alias, but=ws.id):
                    raise AliasTaken(f"alias {alias} is taken in project {project.slug}")
                ws.alias = alias
            ws.repo = _repo(project, canonical)
            ws.role, ws.human = role or ws.role, human or ws.human
            ws.hostname, ws.path, ws.last_seen_ts = hostname or ws.hostname, path or ws.path, now()
            ws.save()
    except peewee.IntegrityError:  # lost a race for the alias (the unique index decides)
        raise AliasTaken(f"alias {alias} is taken in project {project.slug}") from None
    st.tokens.forget_token(token)
    return InitView(project_view(project), workspace_view(ws, ws.repo.canonical), token)


def crosses_coordinator(current: str, wanted: str | None) -> bool:
    """Whether changing role `current` to `wanted` (None: unchanged) enters or leaves coordinator."""
    return wanted is not None and wanted != current and COORDINATOR in (current, wanted)


# -- authentication ---------------------------------------------------------------------------

def authenticate(st: Store, token: str) -> tuple[Workspace, Project]:
    """The workspace and project a bearer token belongs to.

    Raises:
        Unauthorized: no token, or one we do not know (or revoked).
    """
    if not token.startswith(WORKSPACE_TOKEN_PREFIX):
        raise Unauthorized("this call needs a workspace token: run `wire init` in your worktree")
    cached = st.tokens.get(token)
    if cached is not None:
        return cached
    found = queries.token_holder(hash_secret(token))
    if found is None:
        raise Unauthorized("unknown or revoked workspace token: run `wire init` again")
    row, project = found
    st.tokens.put(token, row, project)
    return row, project


def authenticate_key(st: Store, key: str) -> Project:
    """The project a project key (admin) belongs to, compared by hash like `init_workspace` does.

    Raises:
        Forbidden: the bearer is a workspace token (it acts only as its workspace, never as admin).
        Unauthorized: no key, or one no project has.
    """
    if key.startswith(WORKSPACE_TOKEN_PREFIX):
        authenticate(st, key)  # an unknown token is a 401, a valid one a 403
        raise Forbidden("this needs the project key (a human's); "
                        "a workspace token acts only as its workspace")
    if not key.startswith(PROJECT_KEY_PREFIX):
        raise Unauthorized("this call needs the project key (bw_pk_...): --key or WIRE_PROJECT_KEY")
    project = Project.get_or_none(Project.key_hash == hash_secret(key))
    if project is None:
        raise Unauthorized("unknown project key")
    return project


def forget_token(st: Store, token: str) -> None:
    st.tokens.forget_token(token)


def forget_workspace(st: Store, workspace_id: int) -> None:
    """Drop this process's cached copy of a workspace (its role changed); other processes' expire."""
    st.tokens.forget_workspace(workspace_id)


def heartbeat(st: Store, ws: Workspace, branch: str, host: str, seen: str | None = None,
              charge: bool = True, git: dict[str, Any] | None = None) -> Beat:
    """Refresh presence in Redis and read the banner; persist last_seen to SQL at most once a minute.
    `seen`: the newest mailbox entry the client confirms it has shown (`RedisStore.heartbeat`);
    `charge` False: the token and project rate buckets are not charged (an init paid per address).
    `git`: the holder's validated git state (header `X-Wire-Git`), kept with presence (store/gitstate.py).

    Raises:
        Unauthorized: the workspace was revoked (checked in Redis: auth caches may lag).
        RateLimited: the token's or the project's request rate is used up.
    """
    ts = now()
    branch, host = branch[:200], (host or ws.hostname)[:255]
    fields, online = _beat_texts(ws.id, ws.alias, ws.role, ws.human, branch, host)
    if git is not None:  # changes on every call (`active` is on the server's clock): encoded each time
        fields = json.dumps({"branch": branch, "host": host, "alias": ws.alias, "git": presence_git(git, ts)})
    token_rate, project_rate = _beat_rates(st.settings) if charge else (NO_RATE, NO_RATE)
    # back after the presence TTL (or first seen): `presence.online` on the event stream, in the same script
    beat = st.redis.heartbeat(ws.project_id, ws.id, ts, fields, token_rate, project_rate,
                              online_event=online, offline_after=ts - st.settings.presence_ttl, seen=seen)
    if beat.touch:
        try:
            with db.transaction():
                Workspace.update(last_seen_ts=ts).where(Workspace.id == ws.id).execute()
                # a holder that is back is no longer stale
                Claim.update(stale=False).where(Claim.workspace == ws.id, Claim.stale == True).execute()
        except (Unavailable, StorageFull) as exc:
            # The script above has already moved new mail into this reader's pending list, so the
            # beat must reach the answer (the CLI shows banners on failed answers too) or those lines
            # would not be shown until the hourly reminder. last_seen is only a throttled copy.
            logging.getLogger("beadwire.presence").warning("last_seen of workspace %s not saved: %s", ws.id,
                                                           exc)
    return beat


@functools.lru_cache(maxsize=DEFAULT_BEAT_TEXTS_CACHED)
def _beat_texts(workspace_id: int, alias: str, role: str, human: str, branch: str,
                host: str) -> tuple[str, str]:
    """A beat's presence JSON (without git state) and its `presence.online` payload: the same few
    inputs on almost every call of a workspace, so each pair is encoded once per process (two
    encodings, ~3 us, a request otherwise). A pure function of its arguments: a change of alias, role,
    branch or host is a new entry."""
    presence = json.dumps({"branch": branch, "host": host, "alias": alias})
    online = compact({"workspace": workspace_id, "alias": alias, "role": role, "human": human,
                      "branch": branch, "host": host})
    return presence, online


def _beat_rates(settings: Settings) -> tuple[Rate, Rate]:
    """The token's and the project's bucket shapes of `settings` (built once, not on every beat).
    Kept for the last settings object seen, found by identity: hashing a frozen `Settings` (its 35
    fields, as an lru_cache key) cost more than building the shapes."""
    global _last_beat_rates  # a one-entry memo: one assignment, so a thread sees a whole pair
    last = _last_beat_rates
    if last is not None and last[0] is settings:
        return last[1]
    shape = rates(settings)
    found = shape["token"], shape["project"]
    _last_beat_rates = (settings, found)
    return found


#: (settings, its beat rates) of the last settings object `_beat_rates` was asked about.
_last_beat_rates: tuple[Settings, tuple[Rate, Rate]] | None = None


# -- views ----------------------------------------------------------------------------------

def project_view(project: Project) -> ProjectView:
    return ProjectView(project.id, project.slug, project.name, project.stale_claim_seconds)


def workspace_view(ws: Workspace | Member, repo: str, presence: tuple[float, dict[str, Any]] | None = None,
                   claims: list[ClaimView] | None = None) -> WorkspaceView:
    beat, fields = presence or (None, {})
    online = presence is not None
    return WorkspaceView(ws.id, ws.alias, ws.role, ws.human, repo, fields.get("host") or ws.hostname, ws.path,
                         fields.get("branch", ""), online, "online" if online else "offline",
                         iso(max(beat or 0.0, ws.last_seen_ts)), claims or [])


def team(st: Store, project: Project) -> list[WorkspaceView]:
    """Every workspace with presence and claims (with each claim's epic), online ones first."""
    workspaces = queries.team(project.id)
    online = st.redis.presence(project.id, now() - st.settings.presence_ttl)
    beats = {ws_id: beat for ws_id, (beat, _) in online.items()}
    claims: dict[int, list[ClaimView]] = {}
    rows = queries.team_claims(project.id)
    epics = epics_of(project.id, [row.bead_id for row in rows])
    by_id = {ws.id: ws for ws in workspaces}
    for ws_id, bead_id, claimed_ts, reason, ref, repo, title in rows:
        holder = by_id.get(ws_id)
        if holder is None:
            continue
        # the Claim object of the API (with repo, alias, human), like GET /v1/claims, plus its git state
        view = ClaimView(holder.alias, holder.human, iso(claimed_ts), is_stale(st, project, holder, beats),
                         reason, ref, repo, title, epics.get(bead_id))
        view.git = claim_git(online.get(ws_id, (0.0, {}))[1].get("git"), ref)
        claims.setdefault(ws_id, []).append(view)
    out = [workspace_view(ws, ws.repo, online.get(ws.id), claims.get(ws.id)) for ws in workspaces]
    _mark_idle(project, out, online, claims)
    return sorted(out, key=lambda w: (not w.online, w.alias))


def _mark_idle(project: Project, members: list[WorkspaceView],
               online: dict[int, tuple[float, dict[str, Any]]], claims: dict[int, list[ClaimView]]) -> None:
    """Each member's `idle_with_claim` (and since when): online, holding claims, and neither a command
    run nor a file changed for the project's `idle_claim_minutes`."""
    ts = now()
    minutes = idle_minutes_setting(project.id) if claims else 0
    for member in members:
        beat, info = online.get(member.id, (0.0, {}))
        since = idle_since(info, member.id in claims, beat, ts, minutes) if beat else None
        for name, value in idle_view(since, ts).items():
            setattr(member, name, value)


def status(st: Store, project: Project, ws: Workspace) -> StatusView:
    members = team(st, project)
    me = next(w for w in members if w.id == ws.id)
    return StatusView(project_view(project), me, members)


def whoami(st: Store, project: Project, ws: Workspace) -> WorkspaceView:
    """The caller as the team view shows it, with its project."""
    me = next(w for w in team(st, project) if w.id == ws.id)
    me.project = ProjectRef(project.id, project.slug)
    return me


def expire_presence(st: Store) -> int:
    """Sweep: forget presence older than the TTL in every project; returns how many went."""
    cutoff = now() - st.settings.presence_ttl
    return sum(st.redis.prune_presence(pid, cutoff) for (pid,) in Project.select(Project.id).tuples())
