"""Schema setup and versioned migrations; `python -m store.schema` is the Procfile's release step."""

from __future__ import annotations

import peewee

from store import db
from store.config import Settings
from store.models import (
    SCHEMA_VERSION,
    V1_MODELS,
    V2_MODELS,
    V3_MODELS,
    V4_MODELS,
    V5_MODELS,
    V6_MODELS,
    Outbox,
    SchemaVersion,
)
from store.util import now


def current_version() -> int:
    if not SchemaVersion.table_exists():
        return 0
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else 0


def _add_missing_columns(model: type[peewee.Model], names: tuple[str, ...]) -> None:
    """Add columns a newer model has and an older table lacks (fresh tables already have them)."""
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator
    from playhouse.migrate import migrate as run

    table = model._meta.table_name
    present = {c.name for c in db.database.get_columns(table)}
    migrator = SqliteMigrator(db.database.obj) if db.is_sqlite() else PostgresqlMigrator(db.database.obj)
    run(*[migrator.add_column(table, name, model._meta.fields[name]) for name in names if name not in present])


def _add_raw_column() -> None:
    """`bead.raw` (schema v6) added in place: peewee's SQLite migrator would rebuild the table for a
    NOT NULL column, and dropping the old `bead` table would cascade to its claims and comments."""
    if "raw" not in {c.name for c in db.database.get_columns("bead")}:
        db.database.execute_sql("ALTER TABLE \"bead\" ADD COLUMN \"raw\" TEXT NOT NULL DEFAULT ''")


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
                db.database.execute_sql("CREATE INDEX IF NOT EXISTS outbox_delivery_id ON outbox (delivery_id)")
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
            if version < 6:
                db.database.create_tables(V6_MODELS, safe=True)  # sync history (undo)
                _add_raw_column()  # how each bead's record is written back
                SchemaVersion.create(version=6, applied_ts=now())
        return max(version, SCHEMA_VERSION)


def main() -> None:
    settings = Settings.from_env()
    db.init_db(settings)
    print(f"schema at version {migrate()} on {settings.database_url.split('@')[-1]}")


if __name__ == "__main__":
    main()
