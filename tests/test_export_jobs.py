"""Large exports through the job queue (issue 16 item 1): the programme
export (every pass with its history) is prepared by a worker, its progress
shown in the page; the file is written whole or not at all, served to the
tenant that asked for it until it expires; a job whose worker died is run
again or reported failed in French."""
from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from portal.jobs import InlineQueue, RecordingQueue
from portal.models import ExportJob, PrintJobStatus, Programme, utcnow

APTIC = "/mandataire/aptic"
MGP = "/metropole/mgp"


def _recording(app) -> RecordingQueue:
    queue = app.extensions["jobs"] = RecordingQueue()
    return queue


def _job(app, job_id: int) -> ExportJob:
    from portal.extensions import db
    with app.app_context():
        job = db.session.get(ExportJob, job_id)
        db.session.expunge(job)
        return job


def _inline_export(app, programme_id: int, fmt: str) -> bytes:
    from portal.domain import export
    from portal.extensions import db
    with app.app_context():
        text = export.export_to_string(db.session, db.session.get(Programme, programme_id), fmt)
        db.session.remove()
    return text.encode("utf-8")


def _start(browser, face: str, fmt: str = "csv", programme_id: int = 2) -> int:
    response = browser.post(f"{face}/programmes/{programme_id}/export.{fmt}")
    assert response.status_code == 303, response.text[:300]
    assert f"{face}/exports/" in response.location
    return int(response.location.rstrip("/").rsplit("/", 1)[1])


def test_programme_export_is_a_job_whose_file_equals_the_inline_export(app, browser):
    queue = _recording(app)
    browser.login("aptic.admin")
    job_id = _start(browser, APTIC)
    assert queue.calls == [("export.run", (job_id,), {})]
    # The same export asked again while it waits: the same job, nothing enqueued twice.
    assert _start(browser, APTIC) == job_id
    assert len(queue.calls) == 1
    page = browser.get(f"{APTIC}/exports/{job_id}")
    assert "en attente" in page.text and 'hx-trigger="every 1s"' in page.text
    assert browser.get(f"{APTIC}/exports/{job_id}/fichier").status_code == 404
    with app.app_context():
        queue.run_all()                              # what the worker does
    job = _job(app, job_id)
    assert job.status is PrintJobStatus.TERMINE and job.attempts == 1
    assert job.done == job.total > 10_000 and job.active_key is None
    assert job.expires_at - job.finished_at == dt.timedelta(hours=app.config["EXPORT_TTL_HOURS"])
    page = browser.get(f"{APTIC}/exports/{job_id}", headers={"HX-Request": "true"})
    assert "terminé" in page.text and "hx-trigger" not in page.text
    response = browser.get(f"{APTIC}/exports/{job_id}/fichier")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "historique.csv" in response.headers["Content-Disposition"]
    assert response.data == _inline_export(app, 2, "csv")
    response.close()
    # Delivered twice (a retry): a finished job is left alone.
    with app.app_context():
        queue.enqueue("export.run", job_id)
        queue.run_all()
    assert _job(app, job_id).attempts == 1
    # Once finished, « Exporter » prepares a fresh file.
    assert _start(browser, APTIC) != job_id


def test_export_job_runs_inline_without_a_queue(app, browser):
    """JOBS_INLINE=sync (no Redis): the job runs when the request ends."""
    app.extensions["jobs"] = InlineQueue(synchronous=True)
    browser.login("mgp.agent")
    job_id = _start(browser, MGP, "json")
    page = browser.get(f"{MGP}/exports/{job_id}").text
    assert "terminé" in page and "Télécharger" in page
    response = browser.get(f"{MGP}/exports/{job_id}/fichier")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert response.data == _inline_export(app, 2, "json")
    assert len(json.loads(response.data)["pass"]) == _job(app, job_id).total
    response.close()


def test_another_tenant_gets_404_on_the_job_and_its_file(app, browser_factory):
    aptic = browser_factory().login("aptic.admin")
    job_id = _start(aptic, APTIC)                    # runs at the end of the request (tests)
    assert _job(app, job_id).status is PrintJobStatus.TERMINE
    mgp = browser_factory().login("mgp.agent")
    commune = browser_factory().login("referent.bondy")
    for who, face in ((mgp, MGP), (mgp, APTIC), (commune, MGP)):
        assert who.get(f"{face}/exports/{job_id}").status_code == 404
        assert who.get(f"{face}/exports/{job_id}/fichier").status_code == 404
    # The commanditaire's own job is not the issuer's either.
    mgp_job = _start(mgp, MGP)
    assert aptic.get(f"{APTIC}/exports/{mgp_job}/fichier").status_code == 404
    own = mgp.get(f"{MGP}/exports/{mgp_job}/fichier")
    assert own.status_code == 200
    own.close()
    # A commune cannot start an export of a programme that is not its own.
    assert commune.post(f"{MGP}/programmes/2/export.csv").status_code == 404


def _simulate_dead_worker(app, job_id: int, attempts: int):
    """What a worker killed mid-export leaves: « en cours », an old heartbeat, a partial file."""
    from portal.extensions import db
    from portal.jobs import exports
    with app.app_context():
        db.session.execute(sa.update(ExportJob).where(ExportJob.id == job_id).values(
            status=PrintJobStatus.EN_COURS, done=1000, attempts=attempts,
            heartbeat_at=utcnow() - dt.timedelta(minutes=10)))
        db.session.commit()
        target = exports.file_path(app.config["EXPORT_DIR"], db.session.get(ExportJob, job_id))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.dead.part")
    partial.write_text("serie;carnet\nhalf")
    return target, partial


def test_killed_export_job_is_reported_failed_in_french(app, browser):
    from portal.printing.jobs import MAX_ATTEMPTS
    queue = _recording(app)
    browser.login("aptic.admin")
    job_id = _start(browser, APTIC)
    queue.calls.clear()
    target, partial = _simulate_dead_worker(app, job_id, attempts=MAX_ATTEMPTS)
    assert browser.get(f"{APTIC}/exports/{job_id}/fichier").status_code == 404
    page = browser.get(f"{APTIC}/exports/{job_id}").text
    assert "échec" in page and "interrompu" in page and "Relancez l'export" in page
    assert queue.calls == []
    assert browser.get(f"{APTIC}/exports/{job_id}/fichier").status_code == 404
    assert not target.exists()
    # The reaper deletes the dead worker's partial file; a new export can be asked.
    from portal.extensions import db
    from portal.jobs import exports
    with app.app_context():
        assert exports.purge_files(db.session, app.config["EXPORT_DIR"]) == 1
    assert not partial.exists()
    assert _start(browser, APTIC) != job_id


def test_export_of_a_dead_worker_is_run_again_then_completes(app, browser):
    queue = _recording(app)
    browser.login("aptic.admin")
    job_id = _start(browser, APTIC)
    queue.calls.clear()
    _simulate_dead_worker(app, job_id, attempts=1)
    with app.app_context():
        from portal.jobs.tasks import execute
        assert execute("jobs.reap") >= 1            # what the scheduler does every minute
    assert queue.calls == [("export.run", (job_id,), {})]
    with app.app_context():
        queue.run_all()
    job = _job(app, job_id)
    assert job.status is PrintJobStatus.TERMINE and job.attempts == 2
    response = browser.get(f"{APTIC}/exports/{job_id}/fichier")
    assert response.data == _inline_export(app, 2, "csv")
    response.close()


def test_expired_export_is_refused_in_french_and_its_file_deleted(app, browser):
    from portal.extensions import db
    from portal.jobs import exports
    browser.login("aptic.admin")
    job_id = _start(browser, APTIC)
    with app.app_context():
        db.session.execute(sa.update(ExportJob).where(ExportJob.id == job_id).values(
            expires_at=utcnow() - dt.timedelta(minutes=1)))
        db.session.commit()
        target = exports.file_path(app.config["EXPORT_DIR"], db.session.get(ExportJob, job_id))
    assert target.exists()
    response = browser.get(f"{APTIC}/exports/{job_id}/fichier")
    assert response.status_code == 410 and "expiré" in response.text
    assert "expiré" in browser.get(f"{APTIC}/exports/{job_id}").text
    with app.app_context():
        assert exports.purge_files(db.session, app.config["EXPORT_DIR"]) == 1
    assert not target.exists()
