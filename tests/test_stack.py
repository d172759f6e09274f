"""The production stack of the Procfile (issue 16), run with honcho on
loopback against PostgreSQL and Redis (own Redis db index and queue name,
own database): a print job and a mail launched through the web are finished
by the worker; a worker killed in the middle of a print job is restarted and
the job completes (or is reported failed in French) — never « en cours »
forever, never a half-written PDF served."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.postgresql_only, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/14"
DEADLINE = 150          # seconds for any single wait below
_TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, what: str, timeout: float = DEADLINE, every: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


class Stack:
    def __init__(self, env: dict, logdir: Path):
        self.env, self.logdir, self.procs, self.files = env, logdir, {}, []

    def start(self, *names: str) -> None:
        key = "+".join(names)
        log = open(self.logdir / f"{key}-{len(self.files)}.log", "w")
        self.files.append(log)
        self.procs[key] = subprocess.Popen(
            [str(ROOT / ".venv/bin/honcho"), "-f", str(ROOT / "Procfile"), "-d", str(ROOT),
             "start", *names],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    @staticmethod
    def _children(pid: int) -> list[int]:
        """Every descendant of ``pid`` (honcho runs each process from a multiprocessing
        child, in a session of its own)."""
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(
                    int(entry.name))
        found, todo = [], [pid]
        while todo:
            for child in parents.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return found

    def _signal_groups(self, proc, sig) -> None:
        groups = set()
        for child in self._children(proc.pid):
            try:
                groups.add(os.getpgid(child))
            except ProcessLookupError:
                pass
        for group in groups:
            try:
                os.killpg(group, sig)     # the process and its RQ work horse
            except ProcessLookupError:
                pass

    def kill(self, key: str) -> None:
        """SIGKILL the processes honcho started for ``key`` (no chance to clean up), then honcho."""
        proc = self.procs.pop(key)
        self._signal_groups(proc, signal.SIGKILL)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for key in list(self.procs):
            proc = self.procs.pop(key)
            groups = set()
            for child in self._children(proc.pid):
                try:
                    groups.add(os.getpgid(child))
                except ProcessLookupError:
                    pass
            try:
                os.killpg(proc.pid, signal.SIGTERM)     # honcho stops its processes
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            for group in groups:                        # whatever did not stop
                try:
                    os.killpg(group, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for log in self.files:
            log.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logdir.glob("*.log"))


@pytest.fixture
def redis_db():
    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        connection.ping()
    except redis.exceptions.RedisError:
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    yield connection
    connection.close()


def test_procfile_stack_runs_print_jobs_and_mail_and_survives_a_killed_worker(
        app, database_url, redis_db, tmp_path):
    requests = pytest.importorskip("requests")
    from helpers import next_totp_code
    queue = f"portal-stack-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    env = dict(os.environ)
    env.update({
        "PATH": f"{ROOT / '.venv/bin'}:{env.get('PATH', '')}",
        "PORTAL_ENV": "production", "PORTAL_HTTPS": "0",
        "SECRET_KEY": app.config["SECRET_KEY"], "PASS_MAC_KEYS": app.config["PASS_MAC_KEYS"],
        "LEDGER_HMAC_KEY": app.config["LEDGER_HMAC_KEY"],
        "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "RQ_QUEUE": queue,
        "PORTAL_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2",
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "PRINT_DIR": str(tmp_path / "prints"), "MAIL_DIR": str(tmp_path / "mail"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "JOB_STALE_SECONDS": "4", "LOG_LEVEL": "INFO",
    })
    env.pop("SMTP_HOST", None)
    base = f"http://127.0.0.1:{port}"
    stack = Stack(env, tmp_path)
    try:
        stack.start("web", "scheduler")
        stack.start("worker")
        _wait(lambda: _get_ok(requests, base + "/readyz"), "web /readyz")

        s = requests.Session()

        def token(path="/connexion"):
            return _TOKEN.search(s.get(base + path, timeout=10).text).group(1)
        email = "aptic.admin@demo.pass-numerique.fr"
        r = s.post(base + "/connexion", data={"email": email, "password": "demo-pass-numerique",
                                             "csrf_token": token()}, allow_redirects=False)
        assert r.status_code == 303, r.text[:300]
        if "/connexion/" in r.headers["Location"]:
            path = urlsplit(r.headers["Location"]).path
            s.get(base + path, timeout=10)
            r = s.post(base + path, data={"code": next_totp_code(app, email),
                                          "csrf_token": token()}, allow_redirects=False)
            assert r.status_code in (200, 303)

        def start_print(last):
            r = s.post(base + "/mandataire/aptic/impressions", allow_redirects=False,
                       data={"programme_id": "2", "first_carnet": "1", "last_carnet": str(last),
                             "csrf_token": token()})
            assert r.status_code == 303, r.text[:300]
            return base + urlsplit(r.headers["Location"]).path

        # 1. A print job and a mail launched through the web, finished by the worker.
        job_url = start_print(3)
        _wait(lambda: "terminé" in s.get(job_url, timeout=10).text, "print job done")
        pdf = s.get(job_url + "/carnets.pdf", timeout=10)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        anonymous = requests.Session()
        page = anonymous.get(base + "/mot-de-passe-oublie", timeout=10).text
        r = anonymous.post(base + "/mot-de-passe-oublie", allow_redirects=False, data={
            "email": email, "csrf_token": _TOKEN.search(page).group(1)})
        assert r.status_code == 303
        mails = _wait(lambda: list((tmp_path / "mail").glob("*.eml")), "reset mail delivered")
        text = mails[0].read_text()
        assert "réinitialisation" in text or "=?utf-8?" in text
        assert f"http://127.0.0.1:{port}/reinitialiser/" in text

        # 2. The worker killed in the middle of a print job, then started again.
        job_url = start_print(250)

        def progress():
            match = re.search(r"(\d[\d\u202f ]*) / ", s.get(job_url, timeout=10).text)
            return match and int(re.sub(r"\D", "", match.group(1))) > 0
        _wait(progress, "print job in progress", every=0.2)
        worker_pids = stack._children(stack.procs["worker"].pid)
        assert len(worker_pids) >= 4               # multiprocessing child, sh, worker, horse
        stack.kill("worker")                       # SIGKILL: no chance to clean up
        _wait(lambda: not any(Path(f"/proc/{pid}/cmdline").exists()
                              and Path(f"/proc/{pid}/cmdline").read_bytes()
                              for pid in worker_pids), "worker processes gone", timeout=10)
        page = s.get(job_url, timeout=10).text
        assert "terminé" not in page
        assert s.get(job_url + "/carnets.pdf", timeout=10).status_code == 404  # no half PDF
        time.sleep(5)                              # heartbeat now older than JOB_STALE_SECONDS
        stack.start("worker")

        def finished():
            page = s.get(job_url, timeout=10).text
            return ("terminé" in page or "échec" in page) and page
        page = _wait(finished, "print job finished after the restart")
        if "terminé" in page:
            pdf = s.get(job_url + "/carnets.pdf", timeout=30)
            assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
            assert pdf.content.rstrip().endswith(b"%%EOF")
            from portal.extensions import db
            from portal.models import PrintJob
            with app.app_context():
                job = db.session.get(PrintJob, int(job_url.rstrip("/").rsplit("/", 1)[1]))
                assert job.attempts == 2 and job.done == job.total == 250  # run again, whole
                db.session.remove()
        else:
            assert "interrompue" in page and "Relancez" in page
        metrics = requests.get(base + "/metrics", timeout=10).text
        assert "portal_request_duration_seconds" in metrics and "portal_queue_depth" in metrics
    except Exception:
        print(stack.logs(), file=sys.stderr)
        raise
    finally:
        stack.stop_all()
        for key in redis_db.scan_iter(f"*{queue}*"):
            redis_db.delete(key)


def _get_ok(requests, url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
