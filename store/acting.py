"""The workspace a person acts through when they talk and work from the dashboard.

Mail, chat, comments and claims all name a workspace: a person gets one of their own in each
project (role `human`, no usable token: nobody can authenticate as it), created on their first
action. Agents address it like any other (`wire chat ask dashboard ...`), and everything it sends
is marked as from a human.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import peewee

from store import db
from store.errors import AliasTaken, BeadNotFound, InvalidInput, WorkspaceNotFound
from store.models import Bead, Project, Repo, Workspace
from store.util import hash_secret, now

if TYPE_CHECKING:
    from store.humans import Person

#: The role of a person's workspace: agents cannot take it (`wire init --role human` is refused).
HUMAN_ROLE = "human"


#: The workspace the shared project key acts through: it has no person behind it.
SHARED_NAME = "dashboard"


def person_workspace(project: Project, person: Person) -> Workspace:
    """The workspace a person (store/humans.py) acts through; the project key's is `dashboard`.

    Raises:
        AliasTaken: an agent already goes by that name.
        InvalidInput: the project has no repo yet.
    """
    return human_workspace(project, person.name if person.human_id is not None else SHARED_NAME)


def is_human(ws: Workspace | None) -> bool:
    return ws is not None and ws.role == HUMAN_ROLE


def human_workspace(project: Project, name: str) -> Workspace:
    """The person `name`'s workspace in `project`, created on first use.

    Raises:
        AliasTaken: an agent already goes by that name.
        InvalidInput: the project has no repo yet (a workspace lives in one).
    """
    found = Workspace.get_or_none(Workspace.project == project.id, Workspace.alias == name)
    if found is None:
        found = _create(project, name)
    if found.role != HUMAN_ROLE:
        raise AliasTaken(f"an agent in this project is called {name!r}: a person cannot act under that name")
    return found


def _create(project: Project, name: str) -> Workspace:
    repo = Repo.select().where(Repo.project == project.id).order_by(Repo.id).first()
    if repo is None:
        raise InvalidInput("this project has no repo yet: run `wire init` in one first")
    ts = now()
    try:
        with db.database.atomic():  # savepoint: a racing first action of the same person inserts it too
            return Workspace.create(project=project.id, repo=repo.id, alias=name, role=HUMAN_ROLE, human=name,
                                    token_hash=hash_secret(secrets.token_urlsafe(32)), created_ts=ts,
                                    last_seen_ts=ts)
    except peewee.IntegrityError:
        return Workspace.get(Workspace.project == project.id, Workspace.alias == name)


def in_repo(ws: Workspace, repo_id: int) -> Workspace:
    """The same workspace, acting in another repo of its project (bare bead ids resolve there, new
    beads are created there); never saved."""
    copy = Workspace(**ws.__data__)
    copy.repo_id = repo_id  # Peewee's id accessor: sets `repo` to the id, as before
    return copy


def find_human(project: Project, name: str) -> Workspace | None:
    """The person's workspace if they have acted before (reading pages creates nothing)."""
    return Workspace.get_or_none(Workspace.project == project.id, Workspace.alias == name,
                                 Workspace.role == HUMAN_ROLE)


def other_in(project: Project, human: Workspace | None, thread: str) -> str | None:
    """The alias `human` talks to in a chat thread (`c:<id>:<id>`), or None when it is not theirs."""
    ids = [int(p) for p in thread.split(":")[1:] if p.isdigit()]
    if human is None or human.id not in ids or len(ids) != 2:
        return None
    other = ids[0] if ids[1] == human.id else ids[1]
    found = Workspace.get_or_none(Workspace.id == other, Workspace.project == project.id)
    return found.alias if found else None


def workspace_named(project: Project, alias: str) -> Workspace:
    """A workspace of the project by alias (revoked ones too).

    Raises:
        WorkspaceNotFound: none of that name in this project.
    """
    found = Workspace.get_or_none(Workspace.project == project.id, Workspace.alias == alias)
    if found is None:
        raise WorkspaceNotFound(f"no workspace {alias} in this project")
    return found


def bead_in(project: Project, pk: int) -> Bead:
    """A bead of the project by its row id (the dashboard's URLs carry it).

    Raises:
        BeadNotFound: no such bead in this project (another project's id included).
    """
    bead = Bead.get_or_none(Bead.id == pk, Bead.project == project.id)
    if bead is None:
        raise BeadNotFound(f"no bead {pk} in this project")
    return bead


def bead_pk(repo_id: int, ref: str) -> int:
    """The row id of bead `ref` of a repo (the page a new bead's form goes on to)."""
    return Bead.get(Bead.repo == repo_id, Bead.ref == ref).id
