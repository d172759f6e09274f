"""Migrations are the only way the schema is made: they must match the
models and go down and up again cleanly, on SQLite and PostgreSQL."""
from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conftest import make_app
from portal.cli import downgrade, upgrade
from portal.extensions import db
from portal.models import Base


def _diff(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": engine.dialect.name == "sqlite"})
        return compare_metadata(context, Base.metadata)


def _tables(engine):
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_models_and_migrations_agree_and_round_trip(leg, tmp_path):
    url = leg.blank_database(tmp_path)
    app = make_app(url)
    try:
        with app.app_context():
            upgrade()
            assert _diff(db.engine) == []
            assert _tables(db.engine) == set(Base.metadata.tables)
            downgrade("base")
            assert _tables(db.engine) == set()
            upgrade()
            assert _diff(db.engine) == []
            db.engine.dispose()
    finally:
        leg.drop(url)
