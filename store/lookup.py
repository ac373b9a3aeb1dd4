"""Finding beads and repos by what people write: `bd-12`, `shop:bd-12`, `github.com/acme/shop:bd-12`.

Apart from store/beads.py so that the modules beads' writes call into (store/readiness.py,
store/steer.py) can resolve a reference without importing beads back.
"""

from __future__ import annotations

from store import queries
from store.errors import AmbiguousBead, BeadNotFound
from store.models import Bead, Repo
from store.util import unstorable_text


def split_ref(ref: str) -> tuple[str, str]:
    """`repo:id` -> (repo, id); a bare id -> ("", id). Repo canonical origins contain no ':'."""
    repo, sep, bead = ref.rpartition(":")
    return (repo, bead) if sep else ("", ref)


def repo_by_written(project_id: int, written: str) -> Repo | None:
    """A repo of the project by its name (`shop`) or canonical origin (`github.com/acme/shop`).

    Raises:
        AmbiguousBead: the short name belongs to several repos (`acme/shop`, `other/shop`); only
            the canonical origin says which one is meant.
    """
    query = Repo.select().where(Repo.project == project_id,
                                (Repo.canonical == written) | (Repo.name == written))
    found = list(query.limit(10))
    exact = [repo for repo in found if repo.canonical == written]
    if exact or len(found) < 2:
        chosen = exact or found
        return chosen[0] if chosen else None
    names = ", ".join(sorted(repo.canonical for repo in found))
    raise AmbiguousBead(f"repo name {written!r} matches {names}; write the canonical origin instead")


def get_bead(project_id: int, home_repo_id: int, ref: str, for_update: bool = False) -> Bead:
    """Resolve a reference: `repo:id`, or an id in the caller's repo, else unique in the project.

    Raises:
        BeadNotFound: nothing matches in this project.
        AmbiguousBead: a bare id exists in several other repos.
    """
    if unstorable_text(ref):
        raise BeadNotFound(f"no bead {ref!r} in this project")  # and no SQL error from the driver
    repo_written, bead_ref = split_ref(ref.strip())
    if repo_written:
        repo = repo_by_written(project_id, repo_written)
        found = Bead.get_or_none(Bead.repo == repo.id, Bead.ref == bead_ref) if repo else None
    else:
        found = queries.bead_in_repo(home_repo_id, bead_ref)
        if found is None:
            matches = list(Bead.select().where(Bead.project == project_id, Bead.ref == bead_ref).limit(5))
            if len(matches) > 1:
                names = ", ".join(f"{m.repo.name}:{m.ref}" for m in matches)
                raise AmbiguousBead(f"{bead_ref} exists in several repos: {names}; write <repo>:<id>")
            found = matches[0] if matches else None
    if found is None or found.project_id != project_id:
        raise BeadNotFound(f"no bead {ref} in this project")
    return found


def beads_by_pk(pks: list[int]) -> list[Bead]:
    """The beads with these primary keys, in the order given (a missing one is left out)."""
    order = {pk: i for i, pk in enumerate(pks)}
    return sorted(Bead.select().where(Bead.id.in_(pks)), key=lambda b: order[b.id]) if pks else []
