"""Commands of issue 6: ``flask --app wsgi close-month [--period AAAA-MM]``."""
from __future__ import annotations


import click
from flask.cli import with_appcontext

from portal.web import clock  # the one clock, PORTAL_TODAY applied


@click.command("close-month")
@click.option("--period", default=None, help="Mois à clôturer, AAAA-MM (le mois précédent sinon).")
@with_appcontext
def close_month_command(period):
    """Build the monthly contre-paiement statements (idempotent)."""
    from portal.domain import settlement
    from portal.domain.errors import DomainError
    from portal.extensions import db
    try:
        this_day = clock.today()    # the portal's one clock, in Paris, like the views
        period = settlement.parse_period(period or settlement.previous_period(this_day))
        statements = settlement.close_month(db.session, period)
    except DomainError as error:
        raise click.ClickException(error.message) from None
    db.session.commit()
    for statement in statements:
        click.echo(f"{period} {statement.structure.name} : {len(statement.lines)} ligne(s), "
                   f"{statement.total_cents / 100:.2f} €")
    click.echo(f"Mois {period} clôturé : {len(statements)} relevé(s) créé(s) ou complété(s).")


def init_app(app):
    app.cli.add_command(close_month_command)
