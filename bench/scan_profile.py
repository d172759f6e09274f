"""Profile: where a scan's time goes, statement by statement (issue 18).

Run from the project root:  .venv/bin/python bench/scan_profile.py [--scans 600]

Prepares the same PostgreSQL database as ``bench/scan_load.py`` (demo data,
distributed pass, API tokens), then, in this process, sends ``--scans``
``POST /api/v1/scans`` through Flask's test client (no HTTP server: the
application's own CPU), with

* SQLAlchemy cursor events: every statement of a scan, grouped by its SQL
  (first words), with how many per scan and the time spent in the driver
  and the database (``before/after_cursor_execute``);
* pyinstrument (PyPI) over the whole loop: the call tree, printed to
  stderr, trimmed to frames above 2 % of the time.

The first 50 scans warm the caches and are not counted. Last line:
``RESULT scans=… app_ms_per_scan=… sql_ms_per_scan=… statements_per_scan=…``.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import sqlalchemy as sa  # noqa: E402

import scan_load  # noqa: E402


def label(statement: str) -> str:
    text = " ".join(statement.split())
    m = re.match(r"(INSERT INTO \w+|UPDATE \w+|DELETE FROM \w+|SELECT .{0,60}? FROM \w+"
                 r"|SELECT \S+|BEGIN|COMMIT)", text)
    return m.group(0) if m else text[:60]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans", type=int, default=600)
    parser.add_argument("--no-profile", action="store_true",
                        help="time the scans without pyinstrument (its sampling slows Python)")
    parser.add_argument("--cprofile", action="store_true",
                        help="cProfile instead of pyinstrument: the functions by own time")
    args = parser.parse_args()
    carnets = (args.scans + 60) // 10 + 1
    codes, tokens = scan_load.prepare(carnets)
    from pyinstrument import Profiler

    from portal import create_app
    from portal.extensions import db
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"{scan_load.PG}/{scan_load.DB_NAME}",
                      "PORTAL_ENV": "development"})
    counts: collections.Counter = collections.Counter()
    seconds: collections.Counter = collections.Counter()
    state = {"on": False}

    with app.app_context():
        engine = db.engine

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, params, context, executemany):
            conn.info["t0"] = time.perf_counter()

        @sa.event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, params, context, executemany):
            if state["on"]:
                key = label(statement)
                counts[key] += 1
                seconds[key] += time.perf_counter() - conn.info.pop("t0", time.perf_counter())

        @sa.event.listens_for(engine, "commit")
        def _commit(conn):
            if state["on"]:
                t0 = time.perf_counter()
                conn.info["commit_t0"] = t0
                counts["COMMIT"] += 1

    client = app.test_client()
    headers = {"Authorization": f"Bearer {tokens[0]}", "Content-Type": "application/json"}
    service = client.get("/api/v1/services", headers=headers).get_json()["services"][0]["id"]

    def scan(i):
        r = client.post("/api/v1/scans", json={"code": codes[i], "service_id": service},
                        headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code == 201, (r.status_code, r.get_json())

    warm = 50
    for i in range(warm):
        scan(i)
    profiler = None if args.no_profile or args.cprofile else Profiler(interval=0.0005)
    if args.cprofile:
        import cProfile
        import pstats
        cprof = cProfile.Profile()
        cprof.enable()
    state["on"] = True
    t0 = time.perf_counter()
    if profiler:
        profiler.start()
    for i in range(warm, warm + args.scans):
        scan(i)
    if profiler:
        profiler.stop()
    if args.cprofile:
        cprof.disable()
        stats = pstats.Stats(cprof, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(45)
        stats.sort_stats("cumulative").print_stats(60)
    elapsed = time.perf_counter() - t0
    state["on"] = False
    n = args.scans
    if profiler:
        print(profiler.output_text(unicode=True, color=False, show_all=False,
                                   short_mode=False), file=sys.stderr)
    total_sql = sum(seconds.values())
    print(f"{'statement':<75} {'per scan':>8} {'ms/scan':>8}", file=sys.stderr)
    for key, c in counts.most_common():
        print(f"{key[:75]:<75} {c / n:8.2f} {seconds[key] * 1000 / n:8.3f}", file=sys.stderr)
    statements = sum(c for k, c in counts.items() if k != "COMMIT")
    print(f"RESULT scans={n} app_ms_per_scan={elapsed * 1000 / n:.2f} "
          f"sql_ms_per_scan={total_sql * 1000 / n:.2f} "
          f"statements_per_scan={statements / n:.1f}")


if __name__ == "__main__":
    main()
