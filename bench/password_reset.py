"""Bench: the password-reset request takes the same time whether or not the
account exists (issue 14 item 12), with the real RQ queue.

Run from the project root:  .venv/bin/python bench/password_reset.py

A fresh SQLite database with the demo data, the app's queue on the local
Redis (db 13, a queue of its own, deleted afterwards). 300 POSTs of
/mot-de-passe-oublie alternating an existing account and an unknown address,
through the test client (no network); the worker is not running, so only the
request's own work is timed. Also times one enqueue of ``mail.deliver``.

Last line: ``RESULT known_ms=<median> unknown_ms=<median> diff_pct=<x> enqueue_ms=<median>``.
Goal: |diff_pct| within the noise (< 10 %).
"""
from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from portal import create_app  # noqa: E402

ROUNDS = 150


def main() -> None:
    from portal.cli import upgrade
    from portal.demo import load_demo_data
    from portal.extensions import db
    from portal.jobs.queue import RQQueue
    tmp = tempfile.mkdtemp()
    queue_name = f"bench-reset-{uuid.uuid4().hex[:8]}"
    app = create_app({
        "PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.sqlite3",
        "SERVER_NAME": "localhost",
        "LOGIN_THROTTLE": {"per_ip": (10**6, 900), "per_account_ip": (5, 900),
                           "per_account": (100, 300), "pass_check": (20, 600)}})
    with app.app_context():
        upgrade()
        load_demo_data(db.session, history=False)   # no scan history: a stable baseline
        db.session.commit()
        db.session.remove()
    queue = RQQueue("redis://127.0.0.1:6379/13", name=queue_name)
    app.extensions["jobs"] = queue
    client = app.test_client()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', client.get("/connexion").text).group(1)
    times = {"known": [], "unknown": []}
    emails = {"known": "hub.agent@demo.pass-numerique.fr", "unknown": "personne@example.org"}
    try:
        for i in range(ROUNDS * 2 + 20):
            kind = "known" if i % 2 else "unknown"
            t0 = time.perf_counter()
            response = client.post("/mot-de-passe-oublie",
                                   data={"email": emails[kind], "csrf_token": token})
            elapsed = time.perf_counter() - t0
            assert response.status_code == 303, response.status_code
            if i >= 20:                              # warm-up discarded
                times[kind].append(elapsed * 1000)
        enqueue = []
        with app.app_context():
            for _ in range(100):
                t0 = time.perf_counter()
                queue.enqueue("mail.deliver", "a@example.org", "Objet", "Corps")
                enqueue.append((time.perf_counter() - t0) * 1000)
        depth = queue.depth()
    finally:
        for key in queue.connection.scan_iter(f"*{queue_name}*"):
            queue.connection.delete(key)
    known, unknown = statistics.median(times["known"]), statistics.median(times["unknown"])
    print(f"{ROUNDS} requests each: known median {known:.2f} ms (p90 "
          f"{statistics.quantiles(times['known'], n=10)[-1]:.2f}), unknown median {unknown:.2f} ms "
          f"(p90 {statistics.quantiles(times['unknown'], n=10)[-1]:.2f}); queue depth after: {depth}")
    print(f"RESULT known_ms={known:.2f} unknown_ms={unknown:.2f} "
          f"diff_pct={100 * (known - unknown) / unknown:+.1f} "
          f"enqueue_ms={statistics.median(enqueue):.2f}")


if __name__ == "__main__":
    main()
