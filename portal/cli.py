"""Command line: ``flask --app wsgi db upgrade``, ``demo-data``…"""
from __future__ import annotations

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from portal import cli_operateurs
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
@with_appcontext
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


@click.command("demo-pass")
@click.option("--count", default=3, show_default=True, type=click.IntRange(1, 50),
              help="Nombre de pass à afficher.")
@with_appcontext
def demo_pass_command(count):
    """Print demo pass to scan now: handed out, not scanned (development only)."""
    import sqlalchemy as sa

    from portal.domain import keys, serials
    from portal.extensions import db
    from portal.models import Carnet, Pass, PassState, Tenant
    if current_app.config["PORTAL_ENV"] not in ("development", "testing"):
        raise click.ClickException("Réservé au développement (PORTAL_ENV=development) : "
                                   "les codes de vérification ne s'affichent jamais ailleurs.")
    rows = db.session.execute(
        sa.select(Pass, Carnet.number, Tenant.name).join(Carnet, Carnet.id == Pass.carnet_id)
        .join(Tenant, Tenant.id == Pass.holder_id)
        .where(Pass.state == PassState.DISTRIBUE).order_by(Pass.id).limit(count)).all()
    if not rows:
        raise click.ClickException("Aucun pass remis et non scanné : chargez d'abord les données "
                                   "de démonstration (flask --app wsgi demo-data).")
    ring, base = keys.pass_ring(), current_app.config["PASS_BASE_URL"]
    for found, number, holder in rows:
        code = serials.verification_code(ring, found.key_id, found.serial)
        click.echo(f"Pass {found.serial} (carnet n° {number}, remis par {holder})")
        click.echo(f"  code de vérification : {code}")
        click.echo(f"  QR code : {serials.qr_payload(base, ring, found.key_id, found.serial)}")
    operateurs = db.session.execute(
        sa.select(Tenant.slug).where(Tenant.parent_id == rows[0][0].commune_id,
                                     Tenant.is_operateur.is_(True)).order_by(Tenant.slug)
    ).scalars().all()
    if operateurs:
        click.echo("À valider par un lieu de la même commune, par exemple connecté comme "
                   f"operateur.{operateurs[0]} : ouvrez l'adresse du QR code, ou Scanner → "
                   "Saisie manuelle avec le numéro et le code de vérification.")


@click.command("setup")
@click.option("--email", default=None, help="Adresse du premier administrateur #APTIC.")
@click.option("--issuer-name", default="#APTIC", show_default=True,
              help="Nom de l'organisation émettrice.")
@click.option("--slug", default="aptic", show_default=True, help="Identifiant dans les URL.")
@click.option("--send/--no-send", default=False,
              help="Envoyer aussi l'invitation par courriel (le lien est toujours affiché).")
@with_appcontext
def setup_command(email, issuer_name, slug, send):
    """First start of an empty database: create the issuer tenant (#APTIC)
    and print a single-use invitation link for its first administrator.
    Refused once an #APTIC administrator exists."""
    import sys
    from portal.domain import onboarding
    from portal.domain.errors import DomainError
    from portal.extensions import db
    from portal.notifications import invitation_url, send_invitation
    if not email:
        if not sys.stdin.isatty():
            raise click.ClickException("Indiquez --email (adresse du premier administrateur).")
        email = click.prompt("Adresse électronique du premier administrateur #APTIC")
    try:
        invitation, token = onboarding.setup_issuer(db.session, email=email,
                                                    tenant_name=issuer_name, slug=slug)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    if send:
        send_invitation(invitation, token)
    click.echo(f"Émetteur « {invitation.tenant.name} » prêt. Lien d'invitation de "
               f"{invitation.email} (valable 7 jours, utilisable une fois) :")
    click.echo(invitation_url(token))


ledger_cli = AppGroup("ledger", help="Journal des mouvements de pass.")


@ledger_cli.command("verify")
@click.option("--programme", "prefix", default=None, help="Préfixe du programme (tous sinon).")
def ledger_verify_command(prefix):
    """Recompute the HMAC chain; exit 1 naming the first bad entry."""
    from portal.domain import ledger
    from portal.extensions import db
    programme_id = _programme(prefix).id if prefix else None
    ledger.seal(db.session, programme_id)
    report = ledger.verify(db.session, programme_id, reconcile=True)
    if report.ok:
        click.echo(f"Journal intègre : {report.entries} écritures scellées vérifiées"
                   + (f", {report.pending} en attente de scellement." if report.pending else "."))
        return
    for problem in report.problems:
        click.echo(f"ANOMALIE : {problem}", err=True)
    raise SystemExit(1)


@ledger_cli.command("seal")
@click.option("--loop", is_flag=True, help="Sceller sans fin (toutes les --interval secondes).")
@click.option("--interval", default=1.0, show_default=True, type=float)
@click.option("--batch", default=2000, show_default=True, type=int)
def ledger_seal_command(loop, interval, batch):
    """The sealer (issue 18): chain the entries waiting in ``ledger_unsealed``
    with the HMAC, in batches (one transaction each), and count them in the
    rollups. ``--loop``: the process to run beside the web workers (a job of
    the queue later); stopped at any moment, it loses nothing: an interrupted
    batch is rolled back and sealed again by the next run."""
    import time

    from portal.domain import ledger
    from portal.extensions import db
    while True:
        try:
            report = ledger.seal(db.session, batch=batch)
        except sa.exc.OperationalError as error:      # database away: try again later
            db.session.rollback()
            click.echo(f"Scellement impossible pour l'instant : {str(error).splitlines()[0]}",
                       err=True)
            report = None
        if report is not None:
            for problem in report.refused:
                click.echo(f"ANOMALIE : {problem}", err=True)
            if report.sealed and not loop:
                click.echo(f"{report.sealed} écritures scellées.")
        if not loop:
            if report is not None and not report.sealed:
                click.echo("Aucune écriture en attente de scellement.")
            return
        db.session.remove()
        time.sleep(interval)


@ledger_cli.command("anchor")
@click.option("--period", default=None, help="Mois clôturé, AAAA-MM (le mois précédent sinon).")
def ledger_anchor_command(period):
    """Store each chain's head as the closing record of a month, after
    verifying the chain since its previous anchor (so every entry up to an
    anchor has been verified once: the reddition then only verifies the
    entries after the last anchor). A broken chain is not anchored: exit 1."""
    import datetime as dt
    from portal.domain import ledger
    from portal.web import clock  # the one clock, PORTAL_TODAY applied
    from portal.extensions import db
    from portal.models import Programme
    if period is None:
        first = clock.today().replace(day=1)
        period = (first - dt.timedelta(days=1)).strftime("%Y-%m")
    broken = False
    ledger.seal(db.session)          # anchors close sealed entries only
    for programme in db.session.execute(sa.select(Programme)).scalars():
        report = ledger.verify(db.session, programme.id, since_anchor=True)
        if not report.ok:
            broken = True
            for problem in report.problems:
                click.echo(f"ANOMALIE : {problem} — {programme.prefix} non clôturé.", err=True)
            continue
        record = ledger.anchor(db.session, programme.id, period)
        click.echo(f"{programme.prefix} {period} : tête n° {record.head_seq} "
                   f"({report.entries} nouvelles écritures vérifiées)")
    db.session.commit()
    if broken:
        raise SystemExit(1)


def _programme(prefix):
    from portal.extensions import db
    from portal.models import Programme
    programme = db.session.execute(
        sa.select(Programme).where(Programme.prefix == prefix.upper())).scalar_one_or_none()
    if programme is None:
        raise click.ClickException(f"Programme {prefix!r} inconnu.")
    return programme


@click.command("export-programme")
@click.argument("prefix")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
@click.option("--output", type=click.Path(dir_okay=False), required=True)
@with_appcontext
def export_programme_command(prefix, fmt, output):
    """Export every pass of a programme with its full movement history."""
    from portal.domain import export
    from portal.extensions import db
    programme = _programme(prefix)
    with open(output, "w", encoding="utf-8", newline="") as out:
        export.write_export(db.session, programme, fmt, out)
    click.echo(f"Pass du programme {programme.prefix} exportés dans {output}.")


@click.command("print-carnets")
@click.argument("prefix")
@click.argument("first", type=int)
@click.argument("last", type=int)
@click.option("--output", type=click.Path(dir_okay=False), required=True)
@click.option("--commune", default="", help="Commune imprimée sur chaque pass (« Commune : »).")
@with_appcontext
def print_carnets_command(prefix, first, last, output, commune):
    """Print carnets FIRST..LAST of a programme to a PDF file, naming the
    commune they are for (--commune), like the « Imprimer » button."""
    from portal.extensions import db
    from portal.printing.carnets import render_carnets_pdf
    from portal.printing.jobs import printable_carnets
    programme = _programme(prefix)
    with open(output, "wb") as out:
        pages = render_carnets_pdf(
            printable_carnets(db.session, programme, first, last,
                              current_app.config["PASS_BASE_URL"], commune_name=commune[:200]),
            out, total=last - first + 1,
            progress=lambda done, total: click.echo(f"\r{done}/{total}", nl=False))
    click.echo(f"\n{pages} pages écrites dans {output}.")


def init_app(app):
    app.cli.add_command(db_cli)
    app.cli.add_command(demo_data_command)
    app.cli.add_command(demo_pass_command)
    app.cli.add_command(setup_command)
    app.cli.add_command(ledger_cli)
    app.cli.add_command(export_programme_command)
    app.cli.add_command(print_carnets_command)
    cli_operateurs.init_app(app)
    from portal.reporting import monthly_report_command
    app.cli.add_command(monthly_report_command)
    from portal.security import cli as security_cli
    security_cli.init_app(app)
    from portal.jobs import cli as jobs_cli
    jobs_cli.init_app(app)
