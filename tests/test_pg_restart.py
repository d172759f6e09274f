"""Fault: PostgreSQL stopped and restarted under a scan load (issue 8).

A throwaway PostgreSQL cluster (initdb in a temporary directory, its own
port, run as the ``postgres`` OS user) holds a migrated database with the
demo data and distributed pass; gunicorn (2 sync workers) serves it. Client
threads, like phones, consume distinct pass through ``POST /api/v1/scans``
with an ``Idempotency-Key`` and retry with the same key on 503 or on a
dropped connection. Mid-load the cluster is stopped twice — ``pg_ctl stop -m
immediate`` (a crash: no checkpoint, in-flight transactions cut), then ``-m
fast`` — and started again. Asserted:

* while it is down the portal answers 503: a French HTML page (signed-in
  page), a JSON French error under ``/api/`` and on ``/healthz``;
* it recovers by itself: same gunicorn master, same workers, no restart;
* every scan acknowledged to a client (201, or 200 replaying a success the
  client did not receive) is in the database exactly once, no pass has two
  live scans, no scan exists that no client asked for;
* ``ledger.verify`` passes, the ledger balances equal the pass table (stock
  equation), the rollups equal a recount, one SCAN ledger entry per scan.

Only in the PostgreSQL leg (``PORTAL_TEST_DB=postgresql``). It does not
touch the shared server: everything runs in its own cluster, removed at the
end even on failure. 12–25 s here (every wait bounded by TEST_BUDGET_S).
"""
from __future__ import annotations

import glob
import html
import http.client
import http.cookiejar
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import LEG, _migrate, make_app

pytestmark = [
    pytest.mark.postgresql_only,
    pytest.mark.slow,
    pytest.mark.skipif(LEG != "postgresql",
                       reason="PostgreSQL restart under load (PostgreSQL leg only)"),
]

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 6
PASS_PER_CLIENT = 120            # more than the clients can consume in the test
CARNETS = (CLIENTS * PASS_PER_CLIENT + 1) // 10 + 1
# From initdb to the end of the load; checks take ~2 s more. A machine
# shared by many test runs may need more (PORTAL_TEST_PG_RESTART_BUDGET).
TEST_BUDGET_S = float(os.environ.get("PORTAL_TEST_PG_RESTART_BUDGET", 90))
OPERATEUR = "operateur.bondy-centre-social@demo.pass-numerique.fr"
SCAN_PAGE = "/structure/bondy-centre-social/scan"


# ----------------------------------------------------------------- the cluster

def _pg_bindir() -> str | None:
    """The newest /usr/lib/postgresql/<version>/bin holding the three tools."""
    tools = ("initdb", "pg_ctl", "postgres")
    dirs = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
            if all(os.access(os.path.join(d, tool), os.X_OK) for tool in tools)]
    version = lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0  # noqa: E731
    return max(dirs, key=version, default=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A throwaway PostgreSQL cluster owned by the ``postgres`` OS user."""

    def __init__(self, bindir: str, user: pwd.struct_passwd):
        self.bindir = bindir
        self.user = user
        self.dir = tempfile.mkdtemp(prefix="pn_pgrestart_")
        os.chmod(self.dir, 0o700)
        os.chown(self.dir, user.pw_uid, user.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgresql.log")
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"
        self.born = time.monotonic()

    def _run(self, tool: str, *args: str, timeout: float = 40, check: bool = True):
        command = [os.path.join(self.bindir, tool), *args]
        if os.geteuid() != self.user.pw_uid:
            command = ["runuser", "-u", self.user.pw_name, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                cwd=self.dir)
        if check and result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {result.stderr[-2000:]}"
                               f"\n--- server log ---\n{self.log_tail()}")
        return result

    def init(self) -> None:
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8", "--locale=C")

    def start(self) -> None:
        # fsync=off: only an OS crash could lose data then, not a stop of the
        # server (immediate or not), which is what this test does.
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                   f"-c unix_socket_directories={self.dir} -c fsync=off "
                   "-c max_connections=50 -c shared_buffers=16MB")
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30",
                  "-o", options, "start")

    def stop(self, mode: str) -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return Path(self.log).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def destroy(self) -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            try:
                self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "15",
                          "stop", check=False)
            except subprocess.TimeoutExpired:
                pass
            pid_file = os.path.join(self.data, "postmaster.pid")
            if os.path.exists(pid_file):   # pg_ctl could not stop it: our postmaster, SIGKILL
                try:
                    os.kill(int(Path(pid_file).read_text().split()[0]), signal.SIGKILL)
                except (OSError, ValueError, IndexError):
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster():
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in "
                    "/usr/lib/postgresql/*/bin")
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no 'postgres' OS user to run a throwaway cluster")
    if os.geteuid() not in (0, user.pw_uid):
        pytest.skip("a throwaway cluster needs root (runuser) or the 'postgres' user")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("runuser not found")
    c = Cluster(bindir, user)
    try:
        c.init()
        c.start()
        yield c
    finally:
        c.destroy()


def _prepare(url: str) -> tuple[list[str], list[str], list[str]]:
    """Migrate, load the demo data, hand out carnets, create API tokens
    (as bench/scan_load.py does). Returns (QR codes, serials, tokens)."""
    from portal.demo_operateurs import distribute_carnets, select_pass_ids
    from portal.domain import accounts, api_tokens, keys, serials
    from portal.domain.allocation import available_carnet_numbers
    from portal.domain.ledger import Actor
    from portal.domain.permissions import TenantKind
    from portal.extensions import db
    from portal.models import Pass, Programme, Tenant

    admin = sa.create_engine(f"{url}/postgres", isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql('CREATE DATABASE "portal"')
    admin.dispose()
    _migrate(f"{url}/portal", demo=True)
    app = make_app(f"{url}/portal")
    with app.app_context():
        session = db.session
        programme = session.execute(sa.select(Programme).where(
            Programme.prefix == "MGP2")).scalar_one()
        ccas = session.execute(sa.select(Tenant).where(Tenant.slug == "bondy-ccas")).scalar_one()
        user = accounts.find_user(session, "prescripteur.bondy-ccas@demo.pass-numerique.fr")
        numbers = available_carnet_numbers(session, programme, CARNETS)
        assert len(numbers) == CARNETS
        distribute_carnets(session, programme, ccas.parent, ccas, numbers, user.id)
        session.commit()
        ids = select_pass_ids(session, programme, numbers)
        rows = session.execute(sa.select(Pass.key_id, Pass.serial).where(
            Pass.id.in_(ids)).order_by(Pass.id)).all()
        codes = [serials.qr_payload("HTTP://127.0.0.1", keys.pass_ring(), kid, serial)
                 for kid, serial in rows]
        structures = session.execute(sa.select(Tenant).where(
            Tenant.kind == TenantKind.STRUCTURE, Tenant.is_operateur.is_(True))
            .order_by(Tenant.id)).scalars().all()
        tokens = [api_tokens.create(session, s, "restart-test", Actor(None, None))[1]
                  for s in structures[:CLIENTS]]
        session.commit()
        session.remove()
        db.engine.dispose()
    return codes, [serial for _kid, serial in rows], tokens


# ----------------------------------------------------------------- gunicorn

def _children(pid: int) -> set[int]:
    found = set()
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.split("/")[2]))
    return found


@pytest.fixture
def server(cluster, tmp_path):
    codes, serials, tokens = _prepare(cluster.url)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PORTAL_TODAY"}
    env.update(DATABASE_URL=f"{cluster.url}/portal", PORTAL_ENV="development",
               PORTAL_HTTPS="0", PRINT_DIR=str(tmp_path / "prints"))
    log = open(tmp_path / "gunicorn.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
         "--timeout", "30", "--graceful-timeout", "5", "--access-logfile", "/dev/null",
         "--log-level", "warning", "wsgi:app"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    # The ledger's sealer runs beside the workers, as in production (issue 18),
    # and lives through the restarts too.
    sealer_log = open(tmp_path / "sealer.log", "w")
    sealer = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "ledger", "seal", "--loop",
         "--interval", "0.5"],
        cwd=ROOT, env=env, stdout=sealer_log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()[-3000:]
            if _status(port, "GET", "/healthz")[0] == 200 and len(_children(proc.pid)) == 2:
                break
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield Server(port, proc, codes, serials, tokens, tmp_path / "gunicorn.log", sealer,
                     tmp_path / "sealer.log")
    finally:
        for child in (proc, sealer):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
        log.close()
        sealer_log.close()


@dataclass
class Server:
    port: int
    proc: subprocess.Popen
    codes: list[str]
    serials: list[str]
    tokens: list[str]
    log: Path
    sealer: subprocess.Popen
    sealer_log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _send_and_drop(port: int, path: str, body: bytes, headers: dict) -> None:
    """Send a request and hang up without reading the answer (a phone losing
    the network just after sending): the server still decides it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
    except (OSError, http.client.HTTPException):
        pass
    finally:
        conn.close()


def _status(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
    """One request on a fresh connection; (0, {}, b"") when it fails."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    except (OSError, http.client.HTTPException):
        return 0, {}, b""
    finally:
        conn.close()


# ----------------------------------------------------------------- the phones

@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    asked: set = field(default_factory=set)          # pass indexes a client sent
    acknowledged: dict = field(default_factory=dict)  # index -> (status, scan id)
    refused: dict = field(default_factory=dict)       # index -> (status, body) final non-success
    unfinished: set = field(default_factory=set)      # still retrying at the deadline
    statuses: dict = field(default_factory=dict)      # every answer seen: status -> n
    replays: int = 0
    dropped: int = 0
    errors_5xx_other: list = field(default_factory=list)

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def acked(self) -> int:
        with self.lock:
            return len(self.acknowledged)


class Phone(threading.Thread):
    """Consumes its own slice of pass; retries each one with the same key
    until a final answer (like the offline queue of the scan page)."""

    def __init__(self, port, token, codes, indexes, tally, stop, deadline, drop_every=0):
        super().__init__(daemon=True)
        self.drop_every = drop_every
        self.port, self.token, self.codes, self.indexes = port, token, codes, indexes
        self.tally, self.stop_taking, self.deadline = tally, stop, deadline
        self.failure: BaseException | None = None

    def run(self):
        try:
            self._run()
        except BaseException as error:  # reported by the test, not lost in the thread
            self.failure = error

    def _run(self):
        auth = {"Authorization": f"Bearer {self.token}"}
        status, _h, data = _status(self.port, "GET", "/api/v1/services", headers=auth)
        assert status == 200, (status, data[:300])
        service_id = json.loads(data)["services"][0]["id"]
        for index in self.indexes:
            if self.stop_taking.is_set():
                return
            key = uuid.uuid4().hex
            body = json.dumps({"code": self.codes[index], "service_id": service_id}).encode()
            headers = dict(auth, **{"Idempotency-Key": key, "Content-Type": "application/json"})
            with self.tally.lock:
                self.tally.asked.add(index)
            if self.drop_every and index % self.drop_every == 0:
                _send_and_drop(self.port, "/api/v1/scans", body, headers)
                with self.tally.lock:
                    self.tally.dropped += 1
                time.sleep(0.02)
            while True:
                if time.monotonic() > self.deadline:
                    with self.tally.lock:
                        self.tally.unfinished.add(index)
                    return
                status, response_headers, data = _status(self.port, "POST", "/api/v1/scans",
                                                          body, headers)
                self.tally.count(status)
                if status in (200, 201):
                    answer = json.loads(data)
                    with self.tally.lock:
                        self.tally.acknowledged[index] = (status, answer)
                        if status == 200:
                            assert response_headers.get("Idempotent-Replayed") == "true"
                            self.tally.replays += 1
                    break
                if status == 0 or status == 503:
                    if status == 503:
                        _assert_json_503(response_headers, data)
                    time.sleep(0.2)     # the phone keeps the scan queued and retries
                    continue
                if status >= 500:
                    with self.tally.lock:
                        self.tally.errors_5xx_other.append((status, data[:300]))
                    time.sleep(0.2)
                    continue
                with self.tally.lock:
                    self.tally.refused[index] = (status, data[:300])
                break


def _assert_json_503(headers: dict, data: bytes) -> None:
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    body = json.loads(data)
    assert body["message"] == ("Le service est momentanément indisponible. "
                               "Réessayez dans quelques instants."), body
    assert body["code"] == "503"
    assert headers.get("Retry-After") == "5"


# ----------------------------------------------------------------- a signed-in browser

class WebBrowser:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str, headers: dict | None = None) -> tuple[int, dict, str]:
        request = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers), error.read().decode()

    def login(self, email: str) -> None:
        _s, _h, page = self.get("/connexion")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({"email": email, "password": "demo-pass-numerique",
                                       "csrf_token": token}).encode()
        with self.opener.open(self.base + "/connexion", data, timeout=10) as response:
            response.read()
        status, _h, _page = self.get(SCAN_PAGE)
        assert status == 200, status


def _assert_html_503(status: int, headers: dict, page: str) -> None:
    assert status == 503, (status, page[:500])
    text = html.unescape(page)
    assert '<html lang="fr"' in text
    assert "Service momentanément indisponible" in text
    assert "Réessayez dans quelques instants" in text
    assert headers.get("Retry-After") == "5"
    assert "Traceback" not in text and "sqlalchemy" not in text.lower()
    assert "psycopg" not in text.lower()


# ----------------------------------------------------------------- the test

def _wait(predicate, timeout: float, what: str, server: Server, budget_end: float):
    deadline = min(time.monotonic() + timeout, budget_end)
    while not predicate():
        assert time.monotonic() < deadline, f"timed out: {what}\n{server.log_tail()}"
        time.sleep(0.1)


def test_postgresql_restart_under_scan_load(cluster, server):
    started = time.monotonic()
    port = server.port
    master_before = server.proc.pid
    workers_before = _children(master_before)
    browser = WebBrowser(port)
    browser.login(OPERATEUR)
    auth = {"Authorization": f"Bearer {server.tokens[0]}"}
    status, _h, data = _status(port, "GET", "/api/v1/services", headers=auth)
    service_id = json.loads(data)["services"][0]["id"]

    # One pass, in no phone's slice, is kept for a scan sent while the database is down.
    outage_index = len(server.codes) - 1
    assert outage_index >= CLIENTS * PASS_PER_CLIENT
    tally = Tally()
    stop_taking = threading.Event()
    # Every wait stops at budget_end; the phones give up retrying there and
    # have 10 s more to return (a request times out after 10 s).
    budget_end = cluster.born + TEST_BUDGET_S - 12
    deadline = budget_end
    phones = [Phone(port, server.tokens[n], server.codes,
                    range(n * PASS_PER_CLIENT, (n + 1) * PASS_PER_CLIENT), tally, stop_taking,
                    deadline, drop_every=3 if n < 2 else 0) for n in range(CLIENTS)]
    outages = []
    try:
        for phone in phones:
            phone.start()
        for mode in ("immediate", "fast"):
            mark = tally.acked()
            _wait(lambda: tally.acked() >= mark + 25, 20, f"25 scans before {mode} stop",
                  server, budget_end)
            seen_503_before = tally.statuses.get(503, 0)
            down_at = time.monotonic()
            cluster.stop(mode)
            # -- down: a French page, a French JSON error, /healthz says so
            _assert_html_503(*browser.get(SCAN_PAGE))
            status, headers, page = browser.get(SCAN_PAGE, {"HX-Request": "true"})
            assert status == 503 and headers.get("HX-Retarget") == "#messages", status
            assert "Service momentanément indisponible" in html.unescape(page)
            status, headers, data = _status(port, "GET", "/healthz")
            assert status == 503 and json.loads(data)["status"] == "indisponible"
            status, headers, data = _status(port, "GET", "/api/v1/services", headers=auth)
            assert status == 503, (status, data[:300])
            _assert_json_503(headers, data)
            if mode == "immediate":
                # A phone scans while the database is down: 503, kept, sent again later.
                outage_key = uuid.uuid4().hex
                outage_request = (json.dumps({"code": server.codes[outage_index],
                                              "service_id": service_id}).encode(),
                                  dict(auth, **{"Idempotency-Key": outage_key,
                                                "Content-Type": "application/json"}))
                status, headers, data = _status(port, "POST", "/api/v1/scans", *outage_request)
                assert status == 503, (status, data[:300])
                _assert_json_503(headers, data)
            time.sleep(1.5)    # the phones keep getting 503s meanwhile
            cluster.start()
            up_at = time.monotonic()
            # -- recovery by itself: no restart of gunicorn
            _wait(lambda: _status(port, "GET", "/healthz")[0] == 200, 20,
                  "/healthz back to 200", server, budget_end)
            _wait(lambda: browser.get(SCAN_PAGE)[0] == 200, 10, "scan page back",
                  server, budget_end)
            recovered_at = time.monotonic()
            outages.append({"mode": mode, "down_s": round(up_at - down_at, 2),
                            "recovery_s": round(recovered_at - up_at, 2),
                            "phone_503": tally.statuses.get(503, 0) - seen_503_before})
        status, headers, data = _status(port, "POST", "/api/v1/scans", *outage_request)
        assert status == 201, (status, data[:300])
        outage_scan = json.loads(data)
        mark = tally.acked()
        _wait(lambda: tally.acked() >= mark + 25, 20, "25 scans after the restarts",
                  server, budget_end)
    finally:
        stop_taking.set()
        for phone in phones:
            phone.join(timeout=max(1, deadline - time.monotonic() + 11))
    assert not any(phone.is_alive() for phone in phones), "a phone is still running"
    for phone in phones:
        if phone.failure is not None:
            raise phone.failure
    load_s = time.monotonic() - started

    # A restart while nobody is using the portal: the pooled connections of
    # both workers are dead, the first requests must not see it (pre-ping).
    cluster.stop("fast")
    cluster.start()
    idle = [_status(port, "GET", "/api/v1/services", headers=auth)[0] for _ in range(6)]
    idle += [browser.get(SCAN_PAGE)[0] for _ in range(4)]
    assert idle == [200] * 10, idle

    assert server.proc.poll() is None, "gunicorn died"
    assert _children(master_before) == workers_before, "gunicorn workers were restarted"
    assert "unexpected error" not in server.log.read_text(errors="replace"), server.log_tail()

    # ------------------------------------------------------------ the client's view
    assert tally.unfinished == set(), f"scans never answered: {sorted(tally.unfinished)}"
    assert tally.errors_5xx_other == [], tally.errors_5xx_other
    assert tally.refused == {}, tally.refused      # distinct pass: nothing may be refused
    acknowledged = dict(tally.acknowledged)
    acknowledged[outage_index] = (201, outage_scan)
    asked = tally.asked | {outage_index}
    assert set(acknowledged) == asked
    for _status_code, answer in acknowledged.values():
        assert answer["message"] == "Pass validé", answer

    # ------------------------------------------------------------ the database's view
    from portal.domain import custody, ledger, rollups
    from portal.extensions import db
    from portal.models import IdempotencyRecord, LedgerEntry, Programme, Scan
    from portal.models.ledger import Nature
    app = make_app(f"{cluster.url}/portal")
    with app.app_context():
        session = db.session
        try:
            # The sealer lived through both restarts and sealed every entry.
            assert server.sealer.poll() is None, server.sealer_log.read_text()[-3000:]
            sealed_by = time.monotonic() + 20
            while ledger.has_unsealed(session):
                session.rollback()
                assert time.monotonic() < sealed_by, server.sealer_log.read_text()[-3000:]
                time.sleep(0.2)
            index_of = {serial: i for i, serial in enumerate(server.serials)}
            scans = session.execute(sa.select(Scan.id, Scan.serial, Scan.cancelled_at)).all()
            live = [s for s in scans if s.cancelled_at is None]
            by_serial: dict[str, int] = {}
            for s in live:
                by_serial[s.serial] = by_serial.get(s.serial, 0) + 1
            doubled = {serial: n for serial, n in by_serial.items() if n > 1}
            in_db = {index_of.get(serial, -1) for serial in by_serial}
            lost = set(acknowledged) - in_db
            unasked = in_db - asked
            assert len(scans) == len(live), "no scan was undone, none may be cancelled"
            assert doubled == {}, f"pass with two live scans: {doubled}"
            assert lost == set(), f"acknowledged scans lost: {sorted(lost)}"
            assert unasked == set(), f"scans nobody asked for: {sorted(unasked)}"
            assert len(live) == len(acknowledged)
            # each acknowledged scan is the one in the database
            ids = {s.serial: s.id for s in live}
            for index, (_code, answer) in acknowledged.items():
                assert answer["serial"] == server.serials[index]
                assert ids[answer["serial"]] == answer["scan"]["id"], answer
            # one 201 idempotency record per scan, one SCAN ledger entry per scan
            stored = session.execute(sa.select(sa.func.count()).select_from(IdempotencyRecord)
                                     .where(IdempotencyRecord.status_code == 201)).scalar()
            assert stored == len(live)
            entries = session.execute(sa.select(LedgerEntry.ref_id).where(
                LedgerEntry.nature == Nature.SCAN)).scalars().all()
            assert sorted(entries) == sorted(s.id for s in live)
            report = ledger.verify(session)
            assert report.ok, report.problems
            for programme in session.execute(sa.select(Programme)).scalars():
                balances = ledger.balances(session, programme.id)
                assert balances == custody.state_counts(session, programme.id)
                assert ledger.issued_total(session, programme.id) == sum(balances.values())
                assert rollups.positions(session, programme.id) == \
                    rollups.recount_positions(session, programme.id)
                assert rollups.flows(session, programme.id) == \
                    rollups.recount_flows(session, programme.id)
        finally:
            session.remove()
            db.engine.dispose()
    print(f"\nRESTART acknowledged={len(acknowledged)} answers_dropped={tally.dropped} "
          f"replayed_200={tally.replays} "
          f"lost={len(lost)} doubled={len(doubled)} unasked={len(unasked)} "
          f"statuses={dict(sorted(tally.statuses.items()))} outages={outages} "
          f"load_s={load_s:.1f}")

