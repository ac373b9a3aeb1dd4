"""Policies: a versioned bundle per project of invariants (for everyone) and one playbook per role.

A project starts on the defaults shipped in `store/policy_defaults/` (materialised as version 1 on
first read). Setting a bundle adds a version and activates it; any version can be re-activated.
Each version carries the SHA-256 of its content, which is the ETag of what is served from it.

The markdown form of a bundle: a `# Invariants` section and `# Role: <name>` sections; everything
inside a section (sub-headings, fenced code) belongs to it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import peewee

from store import db, outbox
from store.errors import Conflict, InvalidPolicy, PolicyVersionNotFound
from store.messages import deliver_view, insert_view
from store.models import Policy, PolicyHead, Project, Workspace
from store.unit import UnitOfWork
from store.util import iso, now

DEFAULTS_DIR = Path(__file__).with_name("policy_defaults")
#: Roles with a shipped playbook, in the order bundles list them.
DEFAULT_ROLES = ("coordinator", "developer", "reviewer", "frontend", "backend")
#: Shipped playbooks that start with the developer's (a frontend agent is a developer first).
BUILDS_ON_DEVELOPER = ("frontend", "backend")
#: Role whose playbook a role without one gets.
FALLBACK_ROLE = "developer"
#: Largest section (invariants or one playbook), and most roles per bundle.
MAX_SECTION = 64 * 1024
MAX_ROLES = 50
ROLE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ROLE_HEADING = re.compile(r"^role\s*:\s*(\S+)$", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass
class Bundle:
    invariants: str = ""
    roles: dict[str, str] = field(default_factory=dict)

    def digest(self) -> str:
        body = json.dumps({"invariants": self.invariants, "roles": self.roles}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


# -- formats ------------------------------------------------------------------------------------

def parse_markdown(text: str) -> Bundle:
    """A bundle from `# Invariants` and `# Role: <name>` sections (fenced code is never split).

    Raises:
        InvalidPolicy: text outside a section, an unknown or repeated section, an empty one.
    """
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    fence = ""
    for number, line in enumerate(text.splitlines(), 1):
        opening = _FENCE.match(line)
        if fence:
            closes = opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence)
            fence = "" if closes else fence
        elif opening:
            fence = opening.group(1)
        elif line.startswith("# "):
            name = _section_name(line[2:].strip(), number)
            if name in sections:
                raise InvalidPolicy(f"line {number}: section '{line.strip()}' appears twice", line=number)
            current = sections[name] = []
            continue
        if current is None:
            if line.strip():
                raise InvalidPolicy(f"line {number}: text before the first section; start with "
                                    "'# Invariants' or '# Role: <name>'", line=number)
            continue
        current.append(line)
    texts = {name: "\n".join(lines).strip("\n") for name, lines in sections.items()}
    return _checked(Bundle(texts.pop("", ""), dict(texts)), "" in sections)


def _section_name(title: str, number: int) -> str:
    """"" for the invariants, else the role (lowercase)."""
    if title.lower() == "invariants":
        return ""
    match = _ROLE_HEADING.match(title)
    if not match:
        raise InvalidPolicy(f"line {number}: unknown section '# {title}'; sections are '# Invariants' and "
                            "'# Role: <name>' (use '##' for headings inside them)", line=number)
    return match.group(1).lower()


def from_json(data: dict[str, Any]) -> Bundle:
    """A bundle from `{"invariants": str, "playbooks": {role: str}}` (already type-checked by the API)."""
    roles = {str(k).lower(): str(v).strip("\n") for k, v in (data.get("playbooks") or {}).items()}
    invariants = str(data.get("invariants") or "").strip("\n")
    return _checked(Bundle(invariants, roles), bool(data.get("invariants")))


def _checked(bundle: Bundle, has_invariants: bool) -> Bundle:
    if not has_invariants and not bundle.roles:
        raise InvalidPolicy("the bundle is empty: give '# Invariants' and/or '# Role: <name>' sections")
    if has_invariants and not bundle.invariants.strip():
        raise InvalidPolicy("the invariants section is empty")
    if len(bundle.roles) > MAX_ROLES:
        raise InvalidPolicy(f"at most {MAX_ROLES} roles")
    for role, text in bundle.roles.items():
        if not ROLE_RE.match(role):
            raise InvalidPolicy(f"role {role!r}: 1-64 lowercase letters, digits, '-' or '_'")
        if not text.strip():
            raise InvalidPolicy(f"the playbook of role {role} is empty")
    for name, text in [("invariants", bundle.invariants), *bundle.roles.items()]:
        if len(text.encode()) > MAX_SECTION:
            raise InvalidPolicy(f"section {name} is larger than {MAX_SECTION // 1024} KiB")
    return bundle


def to_markdown(bundle: Bundle) -> str:
    """The markdown form; `parse_markdown(to_markdown(b)) == b`."""
    parts = [f"# Invariants\n\n{bundle.invariants}\n"] if bundle.invariants else []
    parts += [f"# Role: {role}\n\n{text}\n" for role, text in bundle.roles.items()]
    return "\n".join(parts)


@cache
def default_bundle() -> Bundle:
    """The shipped defaults (`store/policy_defaults/*.md`)."""
    def read(name: str) -> str:
        return (DEFAULTS_DIR / f"{name}.md").read_text(encoding="utf-8").strip("\n")

    roles = {role: read(role) for role in DEFAULT_ROLES}
    for role in BUILDS_ON_DEVELOPER:
        roles[role] = f"{roles[FALLBACK_ROLE]}\n\n{roles[role]}"
    return Bundle(read("invariants"), roles)


# -- versions -----------------------------------------------------------------------------------

def _bundle_of(row: Policy) -> Bundle:
    return Bundle(row.invariants, json.loads(row.roles))


def _active(project: Project) -> Policy:
    """The active version, materialising the defaults as version 1 on a project's first read."""
    row = _head_row(project)
    if row is None:
        bundle, ts = default_bundle(), now()
        with db.transaction():  # racing first reads both insert; the unique indexes keep one
            Policy.insert(project=project.id, version=1, hash=bundle.digest(), invariants=bundle.invariants,
                          roles=json.dumps(bundle.roles), source="default",
                          created_ts=ts).on_conflict_ignore().execute()
            PolicyHead.insert(project=project.id, version=1, updated_ts=ts).on_conflict_ignore().execute()
        row = _head_row(project)
    assert row is not None
    return row


def _head_row(project: Project) -> Policy | None:
    return (Policy.select().join(PolicyHead, on=((PolicyHead.project == Policy.project)
                                                 & (PolicyHead.version == Policy.version)))
            .where(Policy.project == project.id).first())


# -- what the API shows (web/schemas/policies.py dumps these) -----------------------------------

@dataclass
class PolicyVersionView:
    """A version: its content's hash (`etag`), where it came from, its roles, whether it is active."""

    version: int
    etag: str
    source: str
    created_at: str | None  # never None: util.iso of a time
    roles: list[str]
    active: bool


@dataclass
class PolicyRoleView(PolicyVersionView):
    """What one role reads: the invariants and its playbook (`playbook_role`'s, when it has none)."""

    role: str | None
    playbook_role: str | None
    invariants: str
    playbook: str | None


@dataclass
class PolicyBundleView(PolicyVersionView):
    invariants: str
    playbooks: dict[str, str]
    markdown: str


@dataclass
class PolicySetView(PolicyVersionView):
    #: False when the bundle was the active one already (nothing added)
    created: bool


def _version(row: Policy, active: bool) -> dict[str, Any]:
    """A PolicyVersionView's fields, for it and the views that extend it."""
    return {"version": row.version, "etag": row.hash, "source": row.source, "created_at": iso(row.created_ts),
            "roles": list(json.loads(row.roles)), "active": active}


def version_view(row: Policy, active: bool) -> PolicyVersionView:
    return PolicyVersionView(**_version(row, active))


def role_view(project: Project, role: str | None) -> PolicyRoleView:
    """Invariants plus the playbook of `role` (a role without one gets the developer's); no role, none."""
    row = _active(project)
    bundle = _bundle_of(row)
    role = role.lower() if role else None
    fallback = FALLBACK_ROLE if role and FALLBACK_ROLE in bundle.roles else None
    shown = role if role in bundle.roles else fallback
    return PolicyRoleView(**{**_version(row, True), "etag": f"{row.hash[:32]}-{role or '_'}"}, role=role,
                          playbook_role=shown, invariants=bundle.invariants,
                          playbook=bundle.roles.get(shown, "") if shown else None)


def bundle_view(project: Project, version: int | None = None) -> PolicyBundleView:
    """A whole bundle (the active one by default), as JSON and as markdown.

    Raises:
        PolicyVersionNotFound: no such version.
    """
    active = _active(project)
    row = (active if version is None
           else Policy.get_or_none(Policy.project == project.id, Policy.version == version))
    if row is None:
        raise PolicyVersionNotFound(f"no policy version {version} in this project")
    bundle = _bundle_of(row)
    return PolicyBundleView(**_version(row, row.version == active.version), invariants=bundle.invariants,
                            playbooks=bundle.roles, markdown=to_markdown(bundle))


def history(project: Project) -> list[PolicyVersionView]:
    """Every version, newest first."""
    active = _active(project).version
    rows = Policy.select().where(Policy.project == project.id).order_by(Policy.version.desc())
    return [version_view(row, row.version == active) for row in rows]


def set_bundle(project: Project, bundle: Bundle, source: str = "set") -> PolicySetView:
    """Add `bundle` as a new version and activate it; the same content as the active one is a no-op.

    Raises:
        Conflict: another change added a version at the same moment (retry).
    """
    current = _active(project)
    digest = bundle.digest()
    if digest == current.hash:
        return PolicySetView(**_version(current, True), created=False)
    try:
        with db.transaction() as uow:
            latest = Policy.select(peewee.fn.MAX(Policy.version)).where(Policy.project == project.id).scalar()
            row = Policy.create(project=project.id, version=(latest or 0) + 1, hash=digest, source=source,
                                invariants=bundle.invariants, roles=json.dumps(bundle.roles),
                                created_ts=now())
            _point_head(uow, project, row, current.version)
    except peewee.IntegrityError:
        raise Conflict("the policy changed at the same moment; run the command again") from None
    return PolicySetView(**_version(row, True), created=True)


def activate(project: Project, version: int) -> PolicyVersionView:
    """Make an existing version the active one.

    Raises:
        PolicyVersionNotFound: no such version.
    """
    current = _active(project)
    with db.transaction() as uow:
        row = Policy.get_or_none(Policy.project == project.id, Policy.version == version)
        if row is None:
            raise PolicyVersionNotFound(f"no policy version {version} in this project")
        if row.version != current.version:
            _point_head(uow, project, row, current.version)
    return version_view(row, True)


def reset(project: Project) -> PolicySetView:
    """Back to the shipped defaults (a new version unless they are active already)."""
    return set_bundle(project, default_bundle(), source="reset")


def _point_head(uow: UnitOfWork, project: Project, row: Policy, previous: int) -> None:
    """Activate `row` (inside the transaction); the team hears about it in its banner."""
    PolicyHead.update(version=row.version, updated_ts=now()).where(PolicyHead.project == project.id).execute()
    outbox.record(uow, project.id, "policy.activated", {"version": row.version, "previous": previous,
                                                   "etag": row.hash, "source": row.source})
    text = f"policy v{row.version} is now active (was v{previous}): read yours with `wire policy`"
    team = list(Workspace.select().where(Workspace.project == project.id, Workspace.revoked == False))
    view = insert_view(project.id, "notice", None, None, [w.alias for w in team], "", "", text, "normal",
                       {"event": "policy.activated", "version": row.version})
    deliver_view(uow, project.id, view, team)
