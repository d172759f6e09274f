"""Processes of the production stack (Procfile) and duty commands:

* ``flask --app wsgi worker``    — runs queued tasks (RQ worker);
* ``flask --app wsgi scheduler`` — enqueues the duties on their schedule (RQ cron);
* ``flask --app wsgi duty run NAME [--period P]`` / ``duty list`` — by hand.
"""
from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

log = logging.getLogger("portal.jobs")

duty_cli = AppGroup("duty", help="Tâches planifiées (clôture, ancrage, rapports, alertes).")


def _rq_queue():
    from portal.jobs.queue import RQQueue
    queue = current_app.extensions["jobs"]
    if not isinstance(queue, RQQueue):
        raise click.ClickException("REDIS_URL n'est pas défini : pas de file de tâches "
                                   "(les tâches s'exécutent en ligne).")
    return queue


@click.command("worker")
@click.option("--burst", is_flag=True, help="S'arrêter quand la file est vide.")
@with_appcontext
def worker_command(burst):
    """Run queued tasks (print jobs, exports, e-mail, duties) until stopped."""
    from rq import Worker

    from portal.extensions import db
    from portal.jobs import enqueue
    from portal.jobs.tasks import set_worker_app
    from portal.jobs import exports
    from portal.printing import jobs
    queue = _rq_queue()
    app = current_app._get_current_object()
    set_worker_app(app)
    # Jobs left « en cours » by a worker that died: run them again (or report them failed).
    handled = jobs.reap_stale(db.session, stale_seconds=app.config["JOB_STALE_SECONDS"],
                              requeue=lambda jid: enqueue("print.carnets", jid))
    handled += exports.reap_stale(db.session, stale_seconds=app.config["JOB_STALE_SECONDS"],
                                  requeue=lambda jid: enqueue("export.run", jid))
    db.session.remove()
    for engine in db.engines.values():
        engine.dispose()        # the work horses are forked: no pooled connection to share
    if handled:
        log.warning("%s abandoned print or export job(s) handled at start-up", handled)
    worker = Worker([queue.rq_queue], connection=queue.connection)
    worker.work(burst=burst, with_scheduler=True, logging_level=app.config["LOG_LEVEL"])


@click.command("scheduler")
@with_appcontext
def scheduler_command():
    """Enqueue the duties on their schedule (RQ's CronScheduler) and the reaper every minute."""
    from rq.cron import CronScheduler

    queue = _rq_queue()
    cron = CronScheduler(connection=queue.connection,
                         logging_level=current_app.config["LOG_LEVEL"])
    register_schedule(cron, queue.name)
    cron.start()


def register_schedule(cron, queue_name: str) -> None:
    """Each duty on its cron line; the dead-worker reaper every minute."""
    from portal.jobs.duties import DUTIES
    from portal.jobs.tasks import execute
    for duty in DUTIES.values():
        cron.register(execute, queue_name, args=("duty.run", (duty.name,), {}), cron=duty.cron,
                      name=f"duty:{duty.name}")
    cron.register(execute, queue_name, args=("jobs.reap", (), {}), interval=60,
                  name="jobs:reap")


@duty_cli.command("run")
@click.argument("name")
@click.option("--period", default=None, help="AAAA-MM (mensuelles) ou AAAA-MM-JJ (quotidiennes).")
@with_appcontext
def duty_run_command(name, period):
    """Do a duty now (once per period: a second run does nothing)."""
    from portal.extensions import db
    from portal.jobs.duties import DUTIES, run
    if name not in DUTIES:
        raise click.ClickException(f"Tâche inconnue « {name} » : {', '.join(DUTIES)}.")
    try:
        click.echo(run(db.session, name, period))
    except Exception as error:
        raise click.ClickException(f"Échec de « {name} » : {error}") from None


@duty_cli.command("list")
@with_appcontext
def duty_list_command():
    """Each duty with its last run and next run."""
    from portal.extensions import db
    from portal.jobs.duties import overview
    for row in overview(db.session):
        last = (f"{row.last.period} {row.last.status}" if row.last else "jamais")
        click.echo(f"{row.duty.name:16} dernier : {last:24} prochain : {row.next_run:%Y-%m-%d %H:%M} UTC")


def init_app(app):
    app.cli.add_command(worker_command)
    app.cli.add_command(scheduler_command)
    app.cli.add_command(duty_cli)
