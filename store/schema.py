"""Schema setup and versioned migrations; `python -m store.schema` is the Procfile's release step."""

from __future__ import annotations

from store import db
from store.config import Settings
from store.models import ALL_MODELS, SCHEMA_VERSION, SchemaVersion
from store.util import now


def current_version() -> int:
    if not SchemaVersion.table_exists():
        return 0
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else 0


def migrate() -> int:
    """Bring the bound database to SCHEMA_VERSION, keeping its data; returns the version."""
    with db.database.connection_context():
        with db.transaction():
            version = current_version()
            if version < 1:
                db.database.create_tables(ALL_MODELS, safe=True)
                SchemaVersion.create(version=1, applied_ts=now())
            # later versions add `if version < N:` steps here, each in this transaction.
        return max(version, SCHEMA_VERSION)


def main() -> None:
    settings = Settings.from_env()
    db.init_db(settings)
    print(f"schema at version {migrate()} on {settings.database_url.split('@')[-1]}")


if __name__ == "__main__":
    main()
