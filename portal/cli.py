"""Command line: ``flask --app wsgi db upgrade``, ``demo-data``…"""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from portal.config import PROJECT_ROOT

db_cli = AppGroup("db", help="Schéma de la base (migrations Alembic).")


def alembic_config(connection=None):
    from alembic.config import Config
    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url",
                           current_app.config["SQLALCHEMY_DATABASE_URI"].replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(revision: str = "head") -> None:
    from alembic import command
    command.upgrade(alembic_config(), revision)


def downgrade(revision: str) -> None:
    from alembic import command
    command.downgrade(alembic_config(), revision)


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision):
    """Apply the migrations up to REVISION (default: head)."""
    upgrade(revision)
    click.echo(f"Base à jour ({revision}).")


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade_command(revision):
    """Revert the migrations down to REVISION."""
    downgrade(revision)
    click.echo(f"Base ramenée à {revision}.")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def revision_command(message):
    """Autogenerate a new migration from the models (developers)."""
    from alembic import command
    command.revision(alembic_config(), message=message, autogenerate=True)


@click.command("demo-data")
def demo_data_command():
    """Load the demo data (idempotent; development only)."""
    from portal.demo import load_demo_data
    from portal.extensions import db
    if current_app.config["PORTAL_ENV"] not in ("development", "testing"):
        raise click.ClickException("Les données de démonstration sont réservées au développement "
                                   "(PORTAL_ENV=development).")
    created = load_demo_data(db.session)
    db.session.commit()
    click.echo("Données de démonstration chargées." if created
               else "Données de démonstration déjà présentes : rien à faire.")


def init_app(app):
    app.cli.add_command(db_cli)
    app.cli.add_command(demo_data_command)
