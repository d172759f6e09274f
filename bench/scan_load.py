"""Bench: scanning through the JSON API under load (issue 6).

Run from the project root:  .venv/bin/python bench/scan_load.py [--seconds 20]

1. creates a dedicated PostgreSQL database (``pn_bench_scan`` on
   127.0.0.1:5432, dropped first), migrates it, loads the demo data, hands
   out carnets (distinct pass in state "distribué") and creates one API
   token per opérateur structure;
2. starts gunicorn with 2 workers on that database;
3. phase "bare": 32 concurrent clients (threads, http.client keep-alive) hit
   ``/healthz`` (one ``SELECT 1``) for a third of the duration; then phase
   "api": ``GET /api/v1/services`` with a token (the least an authenticated
   API call costs: the token, one SELECT, JSON) — a scan is that and more;
4. phase "scan": the same 32 clients consume distinct pass through
   ``POST /api/v1/scans`` (Idempotency-Key) for ``--seconds`` (≥ 20 s);
5. phase "mixed": half of the requests target pass already consumed (409),
   half fresh pass;
6. checks in the database that no pass has two live scans and that every
   201 was for a different pass, and weighs the scan page (HTML + the CSS/JS
   it loads before the camera starts).

7. phase "light": 2 clients (one per worker) scan fresh pass for 5 s — the
   latency of a scan when the server is not saturated;
8. phase "write floor" (issue 18): the app of ``bench/scan_floor.py`` (the
   smallest durable write: one INSERT + COMMIT) on the same stack, served
   by gunicorn with 2 workers, 32 clients, as long as the scan phase.

During the scan and write-floor phases ``bench/cpu_split.py`` reads the CPU
time of the web workers, PostgreSQL, Redis and the load clients: CPU ms per
request, printed for both.

The sealer (``flask ledger seal --loop``) runs beside gunicorn during the
whole run, as in production: its CPU counts against the scans. At the end
every ledger entry must be sealed (``unsealed_after``) and the chain verify.

Last line: ``RESULT scan_rps=… write_rps=… ratio_to_write=… p95_ms=…
write_p95_ms=… doubles=… ratio=<scan rps / bare rps> p50_ms=… scan_page_kb=…
p95_2clients_ms=… api_ratio_to_write=… unsealed_after=… verify_ok=…`` (p50/p95:
latencies of the "scan" phase; api_ratio_to_write: the "api" phase's rps over
the write floor's — a ceiling for ratio_to_write).
Goals: ratio_to_write >= 0.5, p95_ms <= 2 × write_p95_ms, doubles = 0,
scan_page_kb <= 100 (the older goals, ratio >= 0.5 against the bare route
and p95 <= 50 ms, stay printed).
"""
from __future__ import annotations

import argparse
import http.client
import http.cookiejar
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import sqlalchemy as sa  # noqa: E402

import cpu_split  # noqa: E402

PG = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
DB_NAME = "pn_bench_scan"
CLIENTS = 32
# Throttling counters in Redis, as production runs them (production refuses to
# start without REDIS_URL); the in-process fallback of development starts a
# timer thread per counter update, which no production worker pays.
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/13")
ENV = {"PORTAL_ENV": "development", "PORTAL_HTTPS": "0", "REDIS_URL": REDIS}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def prepare(carnets: int) -> tuple[list[str], list[str]]:
    """Database, demo data, distributed pass; returns (QR codes, tokens)."""
    admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{DB_NAME}"')
    admin.dispose()
    import redis
    redis.Redis.from_url(REDIS).flushdb()
    os.environ.update(ENV)
    from portal import create_app
    from portal.cli import upgrade
    from portal.demo import load_demo_data
    from portal.demo_operateurs import distribute_carnets, select_pass_ids
    from portal.domain import accounts, api_tokens, keys, serials
    from portal.domain.ledger import Actor
    from portal.domain.permissions import TenantKind
    from portal.extensions import db
    from portal.models import Pass, Programme, Tenant
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"{PG}/{DB_NAME}", "PORTAL_ENV": "development"})
    with app.app_context():
        upgrade()
        load_demo_data(db.session, history=False)   # no scan history: a stable baseline
        db.session.commit()
        programme = db.session.execute(sa.select(Programme).where(
            Programme.prefix == "MGP2")).scalar_one()
        ccas = db.session.execute(sa.select(Tenant).where(Tenant.slug == "bondy-ccas")).scalar_one()
        user = accounts.find_user(db.session, "prescripteur.bondy-ccas@demo.pass-numerique.fr")
        # carnets still whole in the Métropole's stock (the demo data ships
        # some); order and activate more when the demo stock is too small.
        from portal.domain import issuance
        from portal.domain.allocation import available_carnet_numbers
        numbers = available_carnet_numbers(db.session, programme, carnets)
        if len(numbers) < carnets:
            order = issuance.order_carnets(db.session, programme, carnets - len(numbers),
                                           actor=Actor(None, programme.issuer_id))
            issuance.record_payment_reference(db.session, order, "BENCH-SCAN",
                                              actor=Actor(None, programme.commanditaire_id))
            issuance.activate_order(db.session, order, actor=Actor(None, programme.issuer_id))
            db.session.commit()
            numbers = available_carnet_numbers(db.session, programme, carnets)
        assert len(numbers) == carnets, (len(numbers), carnets)
        for start in range(0, len(numbers), 100):
            distribute_carnets(db.session, programme, ccas.parent, ccas,
                               numbers[start:start + 100], user.id)
            db.session.commit()
        ids = select_pass_ids(db.session, programme, numbers)
        rows = db.session.execute(sa.select(Pass.key_id, Pass.serial).where(
            Pass.id.in_(ids)).order_by(Pass.id)).all()
        codes = [serials.qr_payload("HTTP://127.0.0.1", keys.pass_ring(), kid, serial)
                 for kid, serial in rows]
        structures = db.session.execute(sa.select(Tenant).where(
            Tenant.kind == TenantKind.STRUCTURE, Tenant.is_operateur.is_(True))
            .order_by(Tenant.id)).scalars().all()
        tokens = []
        for structure in structures:
            _row, token = api_tokens.create(db.session, structure, "bench", Actor(None, None))
            tokens.append(token)
        db.session.commit()
        db.engine.dispose()
    return codes, tokens


def start_sealer() -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=f"{PG}/{DB_NAME}", **ENV)
    return subprocess.Popen(
        [os.path.join(ROOT, ".venv/bin/flask"), "--app", "wsgi", "ledger", "seal", "--loop",
         "--interval", "0.5"], cwd=ROOT, env=env, start_new_session=True)


def write_floor(seconds: float) -> tuple[float, float, dict]:
    """``bench/scan_floor.py``'s write phase, in this run: (rps, p95 ms, CPU
    ms per request by process group)."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import scan_floor
    scan_floor.prepare()
    port = free_port()
    server = scan_floor.start_server(port)
    try:
        scan_floor.run_phase(port, 1, "POST", "/write")     # warm-up
        split = cpu_split.Split(server.pid)
        split.start()
        write = scan_floor.run_phase(port, seconds, "POST", "/write")
        cpu = split.stop(len(write))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    lat = sorted(x * 1000 for x in write)
    return len(write) / seconds, lat[int(0.95 * (len(lat) - 1))], cpu


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, threads: int) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=f"{PG}/{DB_NAME}", **ENV)
    proc = subprocess.Popen(
        [os.path.join(ROOT, ".venv/bin/gunicorn"), "-w", "2", "--threads", str(threads),
         "-b", f"127.0.0.1:{port}",
         "--access-logfile", "/dev/null", "--log-level", "warning", "wsgi:app"],
        cwd=ROOT, env=env, start_new_session=True)
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not start")


class Client:
    def __init__(self, port: int, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.token = token
        self._service_id = None

    @property
    def service_id(self) -> int:
        if self._service_id is None:
            _s, _t, data = self.request("GET", "/api/v1/services",
                                        headers={"Authorization": f"Bearer {self.token}"})
            self._service_id = json.loads(data)["services"][0]["id"]
        return self._service_id

    def request(self, method, path, body=None, headers=None) -> tuple[int, float, bytes]:
        headers = dict(headers or {})
        start = time.perf_counter()
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                return response.status, time.perf_counter() - start, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                if attempt == 2:
                    raise

    def scan(self, code: str, key: str):
        body = json.dumps({"code": code, "service_id": self.service_id}).encode()
        return self.request("POST", "/api/v1/scans", body, {
            "Authorization": f"Bearer {self.token}", "Idempotency-Key": key,
            "Content-Type": "application/json"})


def run_phase(port, tokens, seconds, job, clients: int = CLIENTS) -> list[tuple]:
    """``job(client, index)`` returns a record; runs ``clients`` threads."""
    stop = time.monotonic() + seconds
    records: list[tuple] = []
    lock = threading.Lock()

    def worker(n):
        client = Client(port, tokens[n % len(tokens)])
        client.service_id  # noqa: B018  (fetched before the clock matters)
        local = []
        i = 0
        while time.monotonic() < stop:
            record = job(client, n, i)
            if record is None:
                break
            local.append(record)
            i += 1
        with lock:
            records.extend(local)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return records


def weigh_scan_page(port: int) -> float:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}"
    page = opener.open(f"{base}/connexion").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    opener.open(f"{base}/connexion", urllib.parse.urlencode({
        "email": "operateur.bondy-centre-social@demo.pass-numerique.fr",
        "password": "demo-pass-numerique", "csrf_token": token}).encode())
    html = opener.open(f"{base}/structure/bondy-centre-social/scan").read()
    total = len(html)
    assets = re.findall(rb'(?:src|href)="(/static/[^"]+\.(?:js|css))"', html)
    for asset in sorted(set(assets)):
        total += len(opener.open(base + asset.decode()).read())
    log(f"scan page: {len(html)} B HTML + {len(set(assets))} assets -> {total} B")
    return total / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--carnets", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per gunicorn worker (1 = sync workers)")
    args = parser.parse_args()
    log("preparing the database…")
    codes, tokens = prepare(args.carnets)
    log(f"{len(codes)} distributed pass, {len(tokens)} API tokens")
    port = free_port()
    server = start_server(port, args.threads)
    sealer = start_sealer()
    log(f"gunicorn: 2 workers x {args.threads} thread(s), sealer loop beside")
    try:
        # keep-alive warm-up
        run_phase(port, tokens, 1, lambda c, n, i: c.request("GET", "/healthz")[:2])
        bare = run_phase(port, tokens, max(args.seconds / 2, 8),
                         lambda c, n, i: c.request("GET", "/healthz")[:2])
        bare_rps = len(bare) / max(args.seconds / 2, 8)
        # The least an authenticated API call costs on this portal: the
        # token, one SELECT (the place's services), a JSON answer — no pass.
        api = run_phase(port, tokens, max(args.seconds / 2, 8),
                        lambda c, n, i: c.request("GET", "/api/v1/services", headers={
                            "Authorization": f"Bearer {c.token}"})[:2])
        api_rps = len(api) / max(args.seconds / 2, 8)
        cursor = iter(range(len(codes)))
        cursor_lock = threading.Lock()
        created: list[int] = []

        def take():
            with cursor_lock:
                return next(cursor, None)

        def fresh(client, n, i):
            index = take()
            if index is None:
                return None
            status, elapsed, _ = client.scan(codes[index], uuid.uuid4().hex)
            if status == 201:
                created.append(index)
            return status, elapsed, index

        split = cpu_split.Split(server.pid)
        split.start()
        scan = run_phase(port, tokens, args.seconds, fresh)
        scan_cpu = split.stop(len(scan))
        scan_rps = len(scan) / args.seconds
        consumed = list(created)

        def mixed(client, n, i):
            if i % 2:
                index = consumed[(n * 7919 + i) % len(consumed)]
                status, elapsed, _ = client.scan(codes[index], uuid.uuid4().hex)
                return status, elapsed, index
            return fresh(client, n, i)

        phase2 = run_phase(port, tokens, max(args.seconds / 2, 8), mixed)
        # Not saturated: one client per worker, the latency a phone sees
        # when the server is not queueing 32 requests.
        light = run_phase(port, tokens, 5, fresh, clients=2)
        weight_kb = weigh_scan_page(port)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    time.sleep(3)                      # the sealer's last loops
    os.killpg(sealer.pid, signal.SIGTERM)
    sealer.wait(timeout=30)
    write_rps, write_p95, write_cpu = write_floor(args.seconds)
    statuses = {}
    for status, *_ in scan:
        statuses[status] = statuses.get(status, 0) + 1
    statuses2 = {}
    for status, *_ in phase2:
        statuses2[status] = statuses2.get(status, 0) + 1
    latencies = sorted(r[1] * 1000 for r in scan)
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    phase2_lat = sorted(r[1] * 1000 for r in phase2) or [0.0]
    client_doubles = sum(1 for r in scan + phase2 + light if r[0] == 201) - len(
        {r[2] for r in scan + phase2 + light if r[0] == 201})
    engine = sa.create_engine(f"{PG}/{DB_NAME}")
    with engine.connect() as conn:
        db_doubles = conn.exec_driver_sql(
            "SELECT count(*) FROM (SELECT pass_id FROM scans WHERE cancelled_at IS NULL "
            "GROUP BY pass_id HAVING count(*) > 1) d").scalar()
        scans_in_db = conn.exec_driver_sql("SELECT count(*) FROM scans").scalar()
        unsealed = conn.exec_driver_sql("SELECT count(*) FROM ledger_unsealed").scalar()
        lag = conn.exec_driver_sql(
            "SELECT max(extract(epoch FROM s.sealed_at) - u.queued_at) FROM ledger_seals s "
            "JOIN ledger_entries e ON e.id = s.entry_id "
            "JOIN LATERAL (SELECT extract(epoch FROM e.created_at) AS queued_at) u ON true "
            "WHERE e.nature = 'scan'").scalar()
    engine.dispose()
    os.environ.update(ENV)
    from portal import create_app
    from portal.domain import ledger
    from portal.extensions import db
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"{PG}/{DB_NAME}", "PORTAL_ENV": "development"})
    with app.app_context():
        report = ledger.verify(db.session)
        log(f"ledger verify: ok={report.ok} sealed={report.entries} pending={report.pending} "
            f"{report.problems[:2]}")
        db.engine.dispose()
    log(f"bare: {len(bare)} requests, {bare_rps:.0f} rps")
    log(f"API call with a token, no pass: {len(api)} requests, {api_rps:.0f} rps "
        f"({api_rps / write_rps:.2f} of the write floor)")
    log(f"scan: {len(scan)} requests, {scan_rps:.0f} rps, statuses {statuses}")
    log(f"mixed: {len(phase2)} requests, statuses {statuses2}, "
        f"p50 {statistics.median(phase2_lat):.1f} ms, "
        f"p95 {phase2_lat[int(0.95 * (len(phase2_lat) - 1))]:.1f} ms")
    light_lat = sorted(r[1] * 1000 for r in light) or [0.0]
    light_p95 = light_lat[int(0.95 * (len(light_lat) - 1))]
    log(f"light (2 clients): {len(light)} scans, p50 {statistics.median(light_lat):.1f} ms, "
        f"p95 {light_p95:.1f} ms")
    log(f"scans in database: {scans_in_db}; client-side doubles {client_doubles}, "
        f"database doubles {db_doubles}")
    log(f"CPU ms per scan:  {cpu_split.describe(scan_cpu)}")
    log(f"CPU ms per write: {cpu_split.describe(write_cpu)}")
    log(f"write floor: {write_rps:.0f} rps, p95 {write_p95:.1f} ms; sealing lag (scan "
        f"created → sealed) max {float(lag or 0):.2f} s; unsealed after the run {unsealed}")
    print(f"RESULT scan_rps={scan_rps:.0f} write_rps={write_rps:.0f} "
          f"ratio_to_write={scan_rps / write_rps:.2f} p95_ms={p95:.1f} "
          f"write_p95_ms={write_p95:.1f} doubles={client_doubles + db_doubles} "
          f"ratio={scan_rps / bare_rps:.2f} p50_ms={p50:.1f} scan_page_kb={weight_kb:.1f} "
          f"p95_2clients_ms={light_p95:.1f} api_ratio_to_write={api_rps / write_rps:.2f} "
          f"unsealed_after={unsealed} "
          f"verify_ok={int(report.ok)}")


if __name__ == "__main__":
    main()
