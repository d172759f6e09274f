"""The tasks the queue runs, by name, and ``execute`` that runs one.

A task runs in its own application context (its own database session),
whether in a worker (RQ) or inline; it is idempotent: running it twice
(a retry after a transient failure, a duty enqueued by two schedulers)
does its work once.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from flask import Flask, current_app, g, has_app_context, has_request_context

from portal.observability.context import request_id_scope

log = logging.getLogger("portal.jobs")

_worker_app: Flask | None = None


def set_worker_app(app: Flask) -> None:
    global _worker_app
    _worker_app = app


def _app() -> Flask:
    global _worker_app
    if has_app_context():
        return current_app._get_current_object()
    if _worker_app is None:            # `rq worker` started without our command
        from portal import create_app
        _worker_app = create_app()
    return _worker_app


def _after_fork(app: Flask) -> None:
    """RQ runs each job in a forked work horse: pooled connections inherited
    from the parent must not be shared with it."""
    from portal.extensions import db
    if app.extensions.get("jobs_pid") != os.getpid():
        for engine in db.engines.values():
            engine.dispose(close=False)
        app.extensions["jobs_pid"] = os.getpid()


def execute(task: str, args: tuple | list = (), kwargs: dict | None = None,
            request_id: str | None = None) -> object:
    """Run the task ``task`` (a key of ``TASKS``)."""
    from portal.extensions import db
    from portal.observability import metrics
    func = TASKS[task]
    app = _app()
    _after_fork(app)
    started = time.perf_counter()
    with request_id_scope(request_id), app.app_context():
        g.in_task = True            # tasks it enqueues (an e-mail) run at once when inline
        try:
            log.info("task %s started", task, extra={"task": task})
            result = func(*args, **(kwargs or {}))
            log.info("task %s done", task, extra={"task": task})
            return result
        except Exception:
            db.session.rollback()
            metrics.JOB_FAILURES.labels(task=task).inc()
            log.exception("task %s failed", task, extra={"task": task})
            raise
        finally:
            metrics.JOB_DURATION.labels(task=task).observe(time.perf_counter() - started)
            db.session.remove()


# ---- tasks ---------------------------------------------------------------------------------

def print_carnets(job_id: int) -> None:
    from portal.extensions import db
    from portal.printing import jobs
    config = current_app.config
    jobs.run_print_job(db.session, job_id, config["PASS_BASE_URL"], config["PRINT_DIR"],
                       stale_seconds=config["JOB_STALE_SECONDS"])


def deliver_mail(to: str, subject: str, body: str) -> None:
    from portal.mail import deliver
    deliver(to, subject, body)


def password_reset(email: str) -> bool:
    """Look the account up and send the reset link only if it exists: the
    request that enqueued this did the same work whether it exists or not."""
    from portal.auth.views import send_reset_link
    if has_request_context():
        return send_reset_link(email)
    with current_app.test_request_context(base_url=current_app.config["PORTAL_BASE_URL"]):
        return send_reset_link(email)


def run_duty(name: str, period: str | None = None) -> str:
    from portal.extensions import db
    from portal.jobs import duties
    return duties.run(db.session, name, period)


def export_run(job_id: int) -> None:
    import datetime as dt

    from portal.extensions import db
    from portal.jobs import exports
    config = current_app.config
    exports.run_export_job(db.session, job_id, config["EXPORT_DIR"],
                           ttl=dt.timedelta(hours=config["EXPORT_TTL_HOURS"]),
                           stale_seconds=config["JOB_STALE_SECONDS"])


def reap_stale_jobs(job_id: int | None = None) -> int:
    """Print jobs whose worker died: run again, or reported failed (French
    message); without ``job_id``, export jobs too, and the files of expired
    exports deleted."""
    from portal.extensions import db
    from portal.jobs import enqueue, exports
    from portal.printing import jobs
    stale = current_app.config["JOB_STALE_SECONDS"]
    handled = jobs.reap_stale(db.session, stale_seconds=stale, job_id=job_id,
                              requeue=lambda jid: enqueue("print.carnets", jid))
    if job_id is None:
        handled += exports.reap_stale(db.session, stale_seconds=stale,
                                      requeue=lambda jid: enqueue("export.run", jid))
        exports.purge_files(db.session, current_app.config["EXPORT_DIR"])
    return handled


TASKS: dict[str, Callable] = {
    "print.carnets": print_carnets,
    "export.run": export_run,
    "mail.deliver": deliver_mail,
    "auth.password_reset": password_reset,
    "duty.run": run_duty,
    "jobs.reap": reap_stale_jobs,
}
