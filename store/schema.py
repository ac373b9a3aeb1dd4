"""Schema setup and versioned migrations; `python -m store.schema` is the Procfile's release step."""

from __future__ import annotations

import logging
import re
import unicodedata

import peewee
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator
from playhouse.migrate import migrate as run

from store import db
from store.config import Settings
from store.models import (
    SCHEMA_VERSION,
    V1_MODELS,
    V2_MODELS,
    V3_MODELS,
    V4_MODELS,
    V5_MODELS,
    V7_MODELS,
    V9_MODELS,
    V10_MODELS,
    V11_MODELS,
    V12_MODELS,
    Outbox,
    SchemaVersion,
    Workspace,
)
from store.util import alias_key, now
from store.workspaces import ALIAS_RE

#: The unique index that makes `Alice` and `alice` one alias (schema 6).
ALIAS_INDEX = "workspace_project_alias_ci"
#: The unique index that makes `Maria` and `maria` one person of a project while neither is removed
#: (schema 11).
HUMAN_INDEX = "human_project_name_ci"
#: One-column foreign-key indexes that a composite index starting with the same column serves for every
#: lookup, the parent's ON DELETE checks included (schema 13; store/models.py names the composite of
#: each): each cost index pages written on every claim (claim, event, audit) or mail (message, delivery,
#: audit). `message_project_id` stays: see `Message.project`.
REDUNDANT_INDEXES = ("claim_project_id", "event_project_id", "audit_project_id", "message_sender_id",
                     "delivery_message_id", "delivery_recipient_id")
log = logging.getLogger("beadwire.schema")


def current_version() -> int:
    if not SchemaVersion.table_exists():
        return 0
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else 0


def _add_missing_columns(model: type[peewee.Model], names: tuple[str, ...]) -> None:
    """Add columns a newer model has and an older table lacks (fresh tables already have them)."""
    table = model._meta.table_name
    present = {c.name for c in db.database.get_columns(table)}
    migrator = SqliteMigrator(db.database.obj) if db.is_sqlite() else PostgresqlMigrator(db.database.obj)
    run(*[migrator.add_column(table, name, model._meta.fields[name])
          for name in names if name not in present])


def _add_raw_column() -> None:
    """`bead.raw` (schema 7) added in place: peewee's SQLite migrator would rebuild the table for a
    NOT NULL column, and dropping the old `bead` table would cascade to its claims and comments."""
    _add_column_in_place("bead", "raw", "TEXT NOT NULL DEFAULT ''")


def _add_column_in_place(table: str, name: str, ddl: str) -> None:
    """`ALTER TABLE ... ADD COLUMN` unless the column is there (a fresh table has it already); the
    same statement on SQLite and PostgreSQL, and no table rebuild (see `_add_raw_column`)."""
    if name not in {c.name for c in db.database.get_columns(table)}:
        db.database.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {ddl}')


def migrate() -> int:
    """Bring the bound database to SCHEMA_VERSION, keeping its data; returns the version."""
    with db.database.connection_context():
        with db.transaction():
            version = current_version()
            # each step upgrades an existing database in place, keeping its data
            if version < 1:
                db.database.create_tables(V1_MODELS, safe=True)
                SchemaVersion.create(version=1, applied_ts=now())
            if version < 2:
                db.database.create_tables(V2_MODELS, safe=True)  # messaging: mail, chat, notices
                _add_missing_columns(Outbox, ("delivery_id", "to_events"))
                db.database.execute_sql(
                    "CREATE INDEX IF NOT EXISTS outbox_delivery_id ON outbox (delivery_id)")
                SchemaVersion.create(version=2, applied_ts=now())
            if version < 3:
                db.database.create_tables(V3_MODELS, safe=True)  # escalations, webhooks, policies
                SchemaVersion.create(version=3, applied_ts=now())
            if version < 4:
                db.database.create_tables(V4_MODELS, safe=True)  # handoffs
                SchemaVersion.create(version=4, applied_ts=now())
            if version < 5:
                db.database.create_tables(V5_MODELS, safe=True)  # request ids (Idempotency-Key)
                SchemaVersion.create(version=5, applied_ts=now())
            # aliases are unique whatever their case (`Alice` can no longer sit beside `alice`)
            if version < 6:
                unify_aliases()
                db.database.execute_sql(f"CREATE UNIQUE INDEX IF NOT EXISTS {ALIAS_INDEX} "
                                        "ON workspace (project_id, lower(alias))")
                SchemaVersion.create(version=6, applied_ts=now())
            if version < 7:
                db.database.create_tables(V7_MODELS, safe=True)  # sync history (undo)
                _add_raw_column()  # how each bead's record is written back
                SchemaVersion.create(version=7, applied_ts=now())
            if version < 8:  # project settings: what `ready` shows, when a claim's holder counts as idle
                _add_column_in_place("project", "ready_scope", "TEXT NOT NULL DEFAULT 'all'")
                _add_column_in_place("project", "idle_claim_minutes", "INTEGER NOT NULL DEFAULT 30")
                SchemaVersion.create(version=8, applied_ts=now())
            if version < 9:
                db.database.create_tables(V9_MODELS, safe=True)  # commits recorded on closed beads
                SchemaVersion.create(version=9, applied_ts=now())
            if version < 10:
                db.database.create_tables(V10_MODELS, safe=True)  # join keys (an agent onboards itself)
                SchemaVersion.create(version=10, applied_ts=now())
            if version < 11:  # personal human accounts (store/humans.py)
                db.database.create_tables(V11_MODELS, safe=True)
                db.database.execute_sql(f"CREATE UNIQUE INDEX IF NOT EXISTS {HUMAN_INDEX} "
                                        "ON human (project_id, lower(name)) WHERE removed_ts IS NULL")
                SchemaVersion.create(version=11, applied_ts=now())
            if version < 12:  # binding assignment, pausing an agent, the audit log
                _add_column_in_place("bead", "assigned_by", "VARCHAR(200) NOT NULL DEFAULT ''")
                _add_column_in_place("bead", "assign_reason", "TEXT NOT NULL DEFAULT ''")
                _add_column_in_place("workspace", "paused_by", "VARCHAR(200) NOT NULL DEFAULT ''")
                _add_column_in_place("workspace", "paused_reason", "TEXT NOT NULL DEFAULT ''")
                _add_column_in_place("workspace", "paused_ts", "DOUBLE PRECISION")
                db.database.create_tables(V12_MODELS, safe=True)
                SchemaVersion.create(version=12, applied_ts=now())
            if version < 13:  # fewer index pages written per claim and per mail
                for index in REDUNDANT_INDEXES:
                    db.database.execute_sql(f'DROP INDEX IF EXISTS "{index}"')
                SchemaVersion.create(version=13, applied_ts=now())
        return max(version, SCHEMA_VERSION)


def unify_aliases() -> list[tuple[int, str, str]]:
    """Rename the workspaces whose alias another one of the project already has in another case (or
    that is no valid alias, e.g. `bob` followed by a line break): the oldest keeps its alias, the
    others become `<alias>-2`, `-3`, ... (their tokens keep working; `wire init --alias` picks another).
    Returns (workspace id, old alias, new alias) of each rename, also logged as a warning.
    """
    renamed, taken = [], set()
    rows = Workspace.select(Workspace.id, Workspace.project, Workspace.alias).order_by(Workspace.id).tuples()
    for ws_id, project_id, alias in list(rows):
        fixed = _valid_alias(alias, ALIAS_RE)
        new, n = fixed, 1
        while (project_id, alias_key(new)) in taken:
            n += 1
            new = f"{fixed[:60]}-{n}"
        taken.add((project_id, alias_key(new)))
        if new != alias:
            Workspace.update(alias=new).where(Workspace.id == ws_id).execute()
            renamed.append((ws_id, alias, new))
            log.warning("workspace %s of project %s renamed from %r to %r: aliases are unique whatever "
                        "their case", ws_id, project_id, alias, new)
    return renamed


def _valid_alias(alias: str, pattern: re.Pattern[str]) -> str:
    """`alias` NFKC-normalised, with what the alias rule does not allow replaced by `-`."""
    alias = unicodedata.normalize("NFKC", alias)
    if pattern.fullmatch(alias):
        return alias
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", alias).strip("-._")[:64]
    return cleaned or "agent"


def main() -> None:
    settings = Settings.from_env()
    db.init_db(settings)
    print(f"schema at version {migrate()} on {settings.database_url.split('@')[-1]}")


if __name__ == "__main__":
    main()
