"""Operator commands: ``flask --app wsgi security …`` and ``flask --app wsgi backup``."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

security_cli = AppGroup("security", help="Double authentification des administrateurs.")


@security_cli.command("reset-2fa")
@click.argument("email")
def reset_2fa_command(email):
    """Forget EMAIL's authenticator and recovery codes (lost phone) and sign
    them out everywhere; they enrol again at next sign-in."""
    from portal.domain import accounts
    from portal.extensions import db
    from portal.security import twofactor
    user = accounts.find_user(db.session, email)
    if user is None:
        raise click.ClickException(f"Aucun compte pour {email!r}.")
    twofactor.reset(db.session, user)
    from portal.domain import accounts as account_rules, journal
    for membership in account_rules.memberships_of(db.session, user.id):
        journal.record(db.session, action="second_factor.reset", actor=None,
                       tenant_id=membership.tenant_id, target="membre", target_id=user.id,
                       after={"email": user.email})
    db.session.commit()
    click.echo(f"Double authentification réinitialisée pour {user.email} ; "
               "toutes ses sessions sont fermées.")


@security_cli.command("purge-sessions")
def purge_sessions_command():
    """Delete the sign-in sessions past their inactivity or absolute limit
    (SESSION_IDLE_MINUTES, SESSION_MAX_HOURS); sign-ins also do it."""
    from portal.extensions import db
    from portal.web.sessions import purge_expired
    count = purge_expired()
    db.session.commit()
    click.echo(f"{count} session(s) expirée(s) supprimée(s).")


@security_cli.command("demo-code")
def demo_code_command():
    """Current code of the demo administrators (development only)."""
    from portal.auth import totp
    from portal.demo import DEMO_TOTP_SECRET
    if current_app.config["PORTAL_ENV"] not in ("development", "testing"):
        raise click.ClickException("Réservé au développement (PORTAL_ENV=development).")
    click.echo(totp.code_at(DEMO_TOTP_SECRET))


@click.command("backup")
@click.argument("output", type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(output):
    """Write a consistent copy of the database to OUTPUT (SQLite: online
    backup API; PostgreSQL: runs pg_dump -Fc)."""
    from portal.security.backup import backup
    from portal.extensions import db
    backup(db.engine, output)
    click.echo(f"Sauvegarde écrite dans {output}.")


def init_app(app):
    app.cli.add_command(security_cli)
    app.cli.add_command(backup_command)
