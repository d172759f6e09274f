"""The job queue (issue 16): print jobs and e-mail through it, dead workers
detected, duties done once per period, password reset doing the same work
whether or not the account exists (issue 14 item 12), readiness and metrics."""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid

import pytest
import sqlalchemy as sa

from portal.jobs import RecordingQueue
from portal.models import DutyRun, PrintJob, PrintJobStatus, utcnow

PRINT_URL = "/mandataire/aptic/impressions"


def _recording(app) -> RecordingQueue:
    queue = app.extensions["jobs"] = RecordingQueue()
    return queue


def _job(app, job_id: int) -> PrintJob:
    from portal.extensions import db
    with app.app_context():
        job = db.session.get(PrintJob, job_id)
        db.session.expunge(job)
        return job


def _start_print(browser, last: int = 2) -> int:
    response = browser.post(PRINT_URL, {"programme_id": "2", "first_carnet": "1",
                                        "last_carnet": str(last)})
    assert response.status_code == 303
    return int(response.location.rstrip("/").rsplit("/", 1)[1])


# ------------------------------------------------------------------ print jobs through the queue

def test_print_job_is_enqueued_and_run_by_the_worker(app, browser):
    queue = _recording(app)
    browser.login("aptic.admin")
    job_id = _start_print(browser)
    assert queue.calls == [("print.carnets", (job_id,), {})]
    page = browser.get(f"{PRINT_URL}/{job_id}").text
    assert "en attente" in page                      # nothing ran in the request
    assert browser.get(f"{PRINT_URL}/{job_id}/carnets.pdf").status_code == 404
    with app.app_context():
        queue.run_all()                              # what the worker does
    assert _job(app, job_id).status is PrintJobStatus.TERMINE
    assert _job(app, job_id).attempts == 1
    pdf = browser.get(f"{PRINT_URL}/{job_id}/carnets.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    pdf.close()
    # Run again (a retry delivered twice): a finished job is left alone.
    with app.app_context():
        queue.enqueue("print.carnets", job_id)
        queue.run_all()
    assert _job(app, job_id).attempts == 1


def _simulate_dead_worker(app, job_id: int, attempts: int) -> None:
    """The state a worker killed mid-job leaves: « en cours », old heartbeat, a partial file."""
    from portal.extensions import db
    from portal.printing import jobs
    with app.app_context():
        db.session.execute(sa.update(PrintJob).where(PrintJob.id == job_id).values(
            status=PrintJobStatus.EN_COURS, done=1, attempts=attempts,
            heartbeat_at=utcnow() - dt.timedelta(minutes=10)))
        db.session.commit()
    target = jobs.job_path(app.config["PRINT_DIR"], job_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.with_name(f".{target.name}.dead.part").write_bytes(b"%PDF-1.4 half")


def test_job_of_a_dead_worker_is_run_again_then_completes(app, browser):
    queue = _recording(app)
    browser.login("aptic.admin")
    job_id = _start_print(browser)
    queue.calls.clear()
    _simulate_dead_worker(app, job_id, attempts=1)
    # The half-written PDF is never served.
    assert browser.get(f"{PRINT_URL}/{job_id}/carnets.pdf").status_code == 404
    page = browser.get(f"{PRINT_URL}/{job_id}").text
    assert "en cours" not in page and "en attente" in page
    assert queue.calls == [("print.carnets", (job_id,), {})]
    with app.app_context():
        queue.run_all()
    job = _job(app, job_id)
    assert job.status is PrintJobStatus.TERMINE and job.attempts == 2 and job.done == job.total
    pdf = browser.get(f"{PRINT_URL}/{job_id}/carnets.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    pdf.close()


def test_job_of_a_dead_worker_fails_in_french_after_the_last_attempt(app, browser):
    from portal.printing.jobs import MAX_ATTEMPTS
    queue = _recording(app)
    browser.login("aptic.admin")
    job_id = _start_print(browser)
    queue.calls.clear()
    _simulate_dead_worker(app, job_id, attempts=MAX_ATTEMPTS)
    page = browser.get(f"{PRINT_URL}/{job_id}").text
    assert "échec" in page and "interrompue" in page and "Relancez" in page
    assert queue.calls == []
    assert browser.get(f"{PRINT_URL}/{job_id}/carnets.pdf").status_code == 404


def test_fresh_heartbeat_is_not_reaped(app, db_session):
    from portal.printing import jobs
    job = PrintJob(issuer_id=1, programme_id=2, first_carnet=1, last_carnet=1, total=1,
                   status=PrintJobStatus.EN_COURS, heartbeat_at=utcnow(), attempts=1)
    db_session.add(job)
    db_session.commit()
    requeued = []
    assert jobs.reap_stale(db_session, stale_seconds=60, requeue=requeued.append) == 0
    assert jobs.reap_stale(db_session, stale_seconds=60, requeue=requeued.append,
                           now=utcnow() + dt.timedelta(seconds=61)) == 1
    assert requeued == [job.id]


# ------------------------------------------------------------------ e-mail and password reset

def test_send_mail_goes_through_the_queue(app):
    from portal.mail import send_mail
    queue = _recording(app)
    with app.app_context():
        send_mail("a@example.org", "Objet", "Corps")
        assert app.extensions["outbox"] == []
        assert queue.calls == [("mail.deliver", ("a@example.org", "Objet", "Corps"), {})]
        queue.run_all()
    assert [m["To"] for m in app.extensions["outbox"]] == ["a@example.org"]


def _statements_during(app, action) -> list[str]:
    from portal.extensions import db
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def test_password_reset_request_does_the_same_work_whether_the_account_exists(app, browser):
    """Issue 14 item 12: the request enqueues one job and does nothing else
    that depends on the address; the job looks the account up."""
    queue = _recording(app)
    token = browser.csrf_token()

    def request(email):
        response = browser.client.post("/mot-de-passe-oublie",
                                       data={"email": email, "csrf_token": token})
        assert response.status_code == 303

    known = _statements_during(app, lambda: request("hub.agent@demo.pass-numerique.fr"))
    unknown = _statements_during(app, lambda: request("personne@example.org"))
    assert known == unknown                          # identical SQL, statement by statement
    assert not any("users" in s for s in known)      # no account lookup in the request
    assert queue.calls == [("auth.password_reset", ("hub.agent@demo.pass-numerique.fr",), {}),
                           ("auth.password_reset", ("personne@example.org",), {})]
    assert app.extensions["outbox"] == []
    with app.app_context():
        queue.run_all()                              # the job sends only to the real account
        queue.run_all()                              # …through the mail task it enqueued
    outbox = app.extensions["outbox"]
    assert [m["To"] for m in outbox] == ["hub.agent@demo.pass-numerique.fr"]
    assert re.search(r"http://localhost/reinitialiser/\S+", outbox[0].get_content())


# ------------------------------------------------------------------ RQ on a real Redis

def _redis_or_skip(url: str):
    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        connection.ping()
    except redis.exceptions.RedisError:
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    return connection


def test_rq_worker_runs_mail_with_the_request_id_and_retries_failures(app, monkeypatch, caplog):
    from rq import SimpleWorker

    from portal.jobs.queue import RQQueue
    from portal.observability.context import request_id_scope
    url = "redis://127.0.0.1:6379/13"          # own db index, own queue name
    connection = _redis_or_skip(url)
    queue = RQQueue(url, name=f"portal-test-{uuid.uuid4().hex[:8]}")
    app.extensions["jobs"] = queue
    try:
        with app.app_context(), request_id_scope("req-0123456789"):
            job_id = queue.enqueue("mail.deliver", "b@example.org", "Objet", "Corps")
        assert queue.depth() == 1
        assert queue.rq_queue.fetch_job(job_id).meta["request_id"] == "req-0123456789"
        caplog.set_level(logging.INFO, logger="portal.jobs")
        with app.app_context():
            SimpleWorker([queue.rq_queue], connection=queue.connection).work(burst=True)
        assert [m["To"] for m in app.extensions["outbox"]] == ["b@example.org"]
        assert queue.rq_queue.fetch_job(job_id).get_status() == "finished"
        assert any(getattr(r, "request_id", None) == "req-0123456789"
                   and "task mail.deliver done" in r.getMessage() for r in caplog.records)

        # A failing delivery (SMTP down) is retried with backoff, not lost.
        def smtp_down(*args):
            raise ConnectionRefusedError("SMTP down")
        monkeypatch.setattr("portal.mail.deliver", smtp_down)
        with app.app_context():
            job_id = queue.enqueue("mail.deliver", "c@example.org", "Objet", "Corps")
            SimpleWorker([queue.rq_queue], connection=queue.connection).work(burst=True)
        job = queue.rq_queue.fetch_job(job_id)
        assert job.get_status() == "scheduled" and job.retries_left == 2
    finally:
        for key in connection.scan_iter(f"*{queue.name}*"):
            connection.delete(key)
        connection.close()


def test_scheduler_registers_each_duty_on_its_cron(app):
    from rq.cron import CronScheduler

    from portal.jobs.cli import register_schedule
    from portal.jobs.duties import DUTIES
    cron = CronScheduler(connection=None)
    register_schedule(cron, "portal")
    names = {job.name: job for job in cron.get_jobs()}
    assert {f"duty:{d}" for d in DUTIES} | {"jobs:reap"} == set(names)
    assert names["duty:close_month"].cron == "15 1 1 * *"
    assert names["duty:close_month"].args == ("duty.run", ("close_month",), {})


# ------------------------------------------------------------------ duties

def test_duty_scheduled_twice_in_a_period_does_its_work_once(app, db_session, monkeypatch):
    from portal.jobs import duties
    calls = []

    def work(session, period):
        calls.append(period)
        return f"fait pour {period}"
    monkeypatch.setitem(duties.DUTIES, "close_month",
                        duties.DUTIES["close_month"].__class__(
                            "close_month", "Clôture", "15 1 1 * *", True, work, "test"))
    assert duties.run(db_session, "close_month", today=dt.date(2021, 6, 3)) == "fait pour 2021-05"
    assert duties.run(db_session, "close_month", today=dt.date(2021, 6, 20)) == "déjà fait"
    assert calls == ["2021-05"]
    row = db_session.execute(sa.select(DutyRun)).scalar_one()
    assert (row.duty, row.period, row.status, row.attempts) == ("close_month", "2021-05",
                                                               "termine", 1)


def test_failed_duty_keeps_its_french_message_and_runs_again(app, db_session, monkeypatch):
    from portal.jobs import duties
    outcomes = [duties.DutyFailed("Chaîne du journal rompue"), "ancré"]

    def work(session, period):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    monkeypatch.setitem(duties.DUTIES, "anchor_ledger",
                        duties.DUTIES["anchor_ledger"].__class__(
                            "anchor_ledger", "Ancrage", "45 1 1 * *", True, work, "test"))
    with pytest.raises(duties.DutyFailed):
        duties.run(db_session, "anchor_ledger", "2021-05")
    row = db_session.execute(sa.select(DutyRun)).scalar_one()
    assert row.status == "echec" and row.message == "Chaîne du journal rompue"
    assert duties.run(db_session, "anchor_ledger", "2021-05") == "ancré"
    db_session.refresh(row)
    assert row.status == "termine" and row.attempts == 2


def test_real_duties_are_idempotent(app, db_session):
    from portal.jobs import duties
    from portal.models import LedgerAnchor, Statement
    first = duties.run(db_session, "close_month", "2021-05")
    statements = db_session.execute(sa.select(sa.func.count()).select_from(Statement)).scalar()
    assert "relevé" in first
    assert duties.run(db_session, "anchor_ledger", "2021-05").startswith("Journal clôturé")
    anchors = db_session.execute(sa.select(sa.func.count()).select_from(LedgerAnchor)).scalar()
    # The same duties run by hand again (the DutyRun rows removed): the work is idempotent too.
    db_session.execute(sa.delete(DutyRun))
    db_session.commit()
    duties.run(db_session, "close_month", "2021-05")
    duties.run(db_session, "anchor_ledger", "2021-05")
    assert db_session.execute(sa.select(sa.func.count()).select_from(Statement)).scalar() \
        == statements
    assert db_session.execute(sa.select(sa.func.count()).select_from(LedgerAnchor)).scalar() \
        == anchors


def test_schedules_page_shows_last_run_outcome_and_next_run(app, browser):
    from portal.extensions import db
    from portal.jobs import duties
    with app.app_context():
        duties.run(db.session, "close_month", "2021-05")
    browser.login("aptic.admin")
    page = browser.get("/mandataire/aptic/taches-planifiees").text
    assert "Clôture du mois" in page and "2021-05" in page and "terminé" in page
    assert "Alertes de fin de validité" in page and "jamais" in page
    assert "Prochaine exécution" in page


# ------------------------------------------------------------------ health, metrics, logs

def test_readyz_reports_database_and_queue(app, browser):
    response = browser.get("/readyz")
    assert response.status_code == 200
    assert response.json["database"] == "ok" and "non utilisé" in response.json["redis"]


def test_readyz_is_503_when_redis_is_down(app, browser):
    from portal.jobs.queue import RQQueue
    app.extensions["jobs"] = RQQueue("redis://127.0.0.1:1/0")
    response = browser.get("/readyz")
    assert response.status_code == 503
    assert response.json["redis"] == "injoignable" and response.json["database"] == "ok"


def test_metrics_only_from_allowed_addresses_or_with_token(app, browser):
    browser.get("/connexion")
    response = browser.get("/metrics")
    assert response.status_code == 200
    assert "portal_request_duration_seconds" in response.text
    assert "portal_queue_depth" in response.text
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert browser.get("/metrics", environ_base=outside).status_code == 404
    app.config["METRICS_TOKEN"] = "jeton-de-test-metrics"
    assert browser.get("/metrics", environ_base=outside,
                       headers={"Authorization": "Bearer mauvais"}).status_code == 404
    assert browser.get("/metrics", environ_base=outside,
                       headers={"Authorization": "Bearer jeton-de-test-metrics"}
                       ).status_code == 200


def test_gate_refusals_are_logged_and_counted(app, browser, caplog):
    from portal.observability import metrics
    before = metrics.GATE_REFUSALS.labels(status="404")._value.get()
    browser.login("referent.montreuil")
    caplog.set_level(logging.WARNING, logger="portal.gate")
    assert browser.get("/commune/bondy/").status_code == 404
    refusals = [r for r in caplog.records if r.name == "portal.gate"]
    assert refusals and refusals[-1].status == 404 and "/commune/bondy/" in refusals[-1].getMessage()
    assert metrics.GATE_REFUSALS.labels(status="404")._value.get() == before + 1


def test_json_logs_carry_the_request_id(app, browser):
    from portal.observability.web import configure_logging
    app.config["LOG_FORMAT"] = "json"
    configure_logging(app)
    try:
        handler = next(h for h in logging.getLogger().handlers if getattr(h, "_portal", False))
        lines = []
        original = handler.emit
        handler.emit = lambda record: lines.append(handler.format(record))
        response = browser.get("/commune/bondy/", headers={"X-Request-ID": "abcdef0123456789"})
        handler.emit = original
    finally:
        app.config["LOG_FORMAT"] = "text"
        configure_logging(app)
    assert response.headers["X-Request-ID"] == "abcdef0123456789"
    records = [json.loads(line) for line in lines]
    assert any(r["request_id"] == "abcdef0123456789" and r["logger"] == "portal.gate"
               for r in records)


def test_commanditaire_sees_its_own_duties_without_run_messages(app, browser):
    from portal.extensions import db
    from portal.jobs import duties
    with app.app_context():
        duties.run(db.session, "monthly_report", "2021-05")
        duties.run(db.session, "close_month", "2021-05")
    browser.login("mgp.admin")
    page = browser.get("/metropole/mgp/taches-planifiees").text
    assert "Rapport mensuel" in page and "Alertes de fin de validité" in page
    assert "Clôture du mois" not in page            # #APTIC's duty, not the commanditaire's
    assert "terminé" in page and "Rapports 2021-05" not in page
