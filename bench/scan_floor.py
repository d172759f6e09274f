"""Bench: the floor under bench/scan_load.py's ratio goal (issue 6).

Run from the project root:  .venv/bin/python bench/scan_floor.py [--seconds 10]

The scan goal compares scans with a bare ``SELECT 1``. This bench asks what
the same stack — Flask, Flask-SQLAlchemy, psycopg 3, gunicorn with 2 sync
workers, PostgreSQL with durable commits, 32 closed-loop clients on the same
2 cores — reaches for the smallest *durable write* there is: one INSERT of
one row and a COMMIT, no authentication, no checks, no ledger. A scan does
that plus about fourteen statements, so its ratio cannot exceed this one.

It builds a throw-away database ``pn_bench_floor`` and a one-file Flask app
(below, served by gunicorn with ``scan_floor:app``), nothing of the portal.

Last line: ``RESULT select1_rps=… write_rps=… write_ratio=… write_p95_ms=…``.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PG = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
DB_NAME = "pn_bench_floor"
CLIENTS = 32

# ------------------------------------------------------------ the app (gunicorn scan_floor:app)
if os.environ.get("SCAN_FLOOR_APP"):
    import sqlalchemy as sa
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"{PG}/{DB_NAME}"
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    db = SQLAlchemy(app)

    @app.get("/select1")
    def select1():
        db.session.execute(sa.text("SELECT 1")).scalar()
        return {"ok": True}

    @app.post("/write")
    def write():
        db.session.execute(sa.text("INSERT INTO floor_rows (note) VALUES ('x')"))
        db.session.commit()
        return {"ok": True}, 201

    @app.post("/least-scan/<int:n>")
    def least_scan(n: int):
        """The least any scan must do: find its token, consume its pass
        conditionally, record the consumption, commit — no checks, no ledger,
        no idempotency, no anomaly."""
        structure = db.session.execute(sa.text(
            "SELECT structure_id FROM floor_tokens WHERE token_hash = :h"),
            {"h": f"hash-{n % 30}"}).scalar_one()
        passe = db.session.execute(sa.text(
            "UPDATE floor_passes SET state = 'scanne' WHERE serial = :s AND state = 'distribue' "
            "RETURNING id"), {"s": f"S{n}"}).scalar_one()
        db.session.execute(sa.text("INSERT INTO floor_rows (note) VALUES (:note)"),
                           {"note": f"{structure}:{passe}"})
        db.session.commit()
        return {"ok": True}, 201


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def prepare():
    import sqlalchemy as sa
    admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{DB_NAME}"')
    admin.dispose()
    engine = sa.create_engine(f"{PG}/{DB_NAME}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE floor_rows (id bigserial PRIMARY KEY, note text, "
                             "at timestamptz DEFAULT now())")
        conn.exec_driver_sql("CREATE TABLE floor_tokens (token_hash text PRIMARY KEY, "
                             "structure_id int NOT NULL)")
        conn.exec_driver_sql("INSERT INTO floor_tokens SELECT 'hash-' || n, n "
                             "FROM generate_series(0, 29) n")
        conn.exec_driver_sql("CREATE TABLE floor_passes (id bigserial PRIMARY KEY, "
                             "serial text UNIQUE NOT NULL, state text NOT NULL)")
        conn.exec_driver_sql("INSERT INTO floor_passes (serial, state) SELECT 'S' || n, "
                             "'distribue' FROM generate_series(0, 199999) n")
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    env = dict(os.environ, SCAN_FLOOR_APP="1")
    proc = subprocess.Popen(
        [os.path.join(ROOT, ".venv/bin/gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}",
         "--access-logfile", "/dev/null", "--log-level", "warning", "scan_floor:app"],
        cwd=HERE, env=env, start_new_session=True)
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/select1", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not start")


def run_phase(port: int, seconds: float, method: str, path) -> list[float]:
    """``path``: a string, or a function of a request number (unique in the run)."""
    import http.client
    import itertools
    numbers = itertools.count()
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local = []
        while time.monotonic() < stop:
            start = time.perf_counter()
            target = path if isinstance(path, str) else path(next(numbers))
            conn.request(method, target, body=b"" if method == "POST" else None)
            response = conn.getresponse()
            response.read()
            if response.status not in (200, 201):
                raise SystemExit(f"{path}: HTTP {response.status}")
            local.append(time.perf_counter() - start)
        conn.close()
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    prepare()
    port = free_port()
    server = start_server(port)
    try:
        run_phase(port, 1, "GET", "/select1")       # warm-up
        select1 = run_phase(port, args.seconds, "GET", "/select1")
        write = run_phase(port, args.seconds, "POST", "/write")
        least = run_phase(port, args.seconds, "POST", lambda n: f"/least-scan/{n}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    select1_rps = len(select1) / args.seconds
    write_rps = len(write) / args.seconds
    lat = sorted(x * 1000 for x in write)
    p95 = lat[int(0.95 * (len(lat) - 1))]
    log(f"SELECT 1: {len(select1)} requests, {select1_rps:.0f} rps")
    least_rps = len(least) / args.seconds
    least_lat = sorted(x * 1000 for x in least)
    least_p95 = least_lat[int(0.95 * (len(least_lat) - 1))]
    log(f"INSERT + COMMIT: {len(write)} requests, {write_rps:.0f} rps, p95 {p95:.1f} ms")
    log(f"least scan (token SELECT, pass UPDATE, INSERT, COMMIT): {len(least)} requests, "
        f"{least_rps:.0f} rps, p95 {least_p95:.1f} ms")
    print(f"RESULT select1_rps={select1_rps:.0f} write_rps={write_rps:.0f} "
          f"write_ratio={write_rps / select1_rps:.2f} write_p95_ms={p95:.1f} "
          f"least_scan_rps={least_rps:.0f} least_ratio_to_write={least_rps / write_rps:.2f} "
          f"least_p95_ms={least_p95:.1f}")


if __name__ == "__main__":
    main()
