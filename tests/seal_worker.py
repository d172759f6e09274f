"""Test-only helper (not production code): run the sealer in its own process
and stop it in the middle of a batch, so that the test can kill -9 it there.

Usage: python tests/seal_worker.py DATABASE_URL BATCH STOP_AT_BATCH
Seals with ``ledger.seal(batch=BATCH)``; when the seals of batch number
STOP_AT_BATCH (1-based) have been sent to the database, and before that
batch's COMMIT, prints ``WRITTEN <n>`` and sleeps.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import sqlalchemy as sa  # noqa: E402

from conftest import make_app  # noqa: E402
from portal.domain import ledger  # noqa: E402
from portal.extensions import db  # noqa: E402


def main(url: str, batch: int, stop_at: int) -> None:
    app = make_app(url)
    with app.app_context():
        batches = {"n": 0}

        @sa.event.listens_for(db.engine, "after_cursor_execute")
        def _after(conn, cursor, statement, params, context, executemany):
            if statement.lstrip().upper().startswith("INSERT INTO LEDGER_SEALS"):
                batches["n"] += 1
                if batches["n"] == stop_at:
                    print(f"WRITTEN {len(params) if executemany else 1}", flush=True)
                    time.sleep(120)

        report = ledger.seal(db.session, batch=batch)
        print(f"SEALED {report.sealed}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
