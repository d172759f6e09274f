"""Monthly reports with their e-mails (convention art. 9): used by the CLI
(``flask --app wsgi monthly-report``) and by the Métropole's button."""
from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from portal.domain import reports
from portal.domain.ledger import SYSTEM, Actor
from portal.extensions import db
from portal.mail import send_mail
from portal.models import MonthlyReport, Programme


def notify_referents(report: MonthlyReport) -> int:
    """Tell each commune's référent (e-mail on the convention) the report is ready."""
    sent = 0
    for commune, email in reports.referent_emails(db.session, report.programme):
        send_mail(email, f"Pass Numérique : rapport mensuel {report.month} ({commune})",
                  f"Le rapport mensuel de consommation des pass de {commune} pour "
                  f"{report.month} ({report.programme.name}, version {report.version}) est "
                  "disponible dans votre espace du portail, avec le total de tous les "
                  "territoires (convention, art. 9).\n")
        sent += 1
    return sent


def generate_and_notify(programme: Programme, month: str, *, actor: Actor = SYSTEM,
                        regenerate: bool = False) -> tuple[MonthlyReport, bool]:
    report, created = reports.generate(db.session, programme, month, actor=actor,
                                       regenerate=regenerate)
    db.session.commit()
    if created:
        notify_referents(report)
    return report, created


@click.command("monthly-report")
@click.option("--month", default=None, help="AAAA-MM (défaut : le mois précédent)")
@click.option("--regenerate", is_flag=True, help="Enregistrer une nouvelle version")
@with_appcontext
def monthly_report_command(month, regenerate):
    """Generate the monthly report of every programme (convention art. 9)."""
    from portal.web.clock import today
    month = month or reports.previous_month(today())
    reports.parse_month(month)
    for programme in db.session.execute(sa.select(Programme).order_by(Programme.id)).scalars():
        report, created = generate_and_notify(programme, month, regenerate=regenerate)
        state = "créé" if created else "déjà présent (inchangé)"
        click.echo(f"{programme.prefix} {month} : rapport version {report.version} {state}.")
