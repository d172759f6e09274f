"""Test-only helper (not production code): run one custody move in its own
process and stop between the writes and the COMMIT, so that the test can
kill -9 it there.

Usage: python tests/fault_worker.py DATABASE_URL PROGRAMME_PREFIX COMMUNE_SLUG CARNETS
The pause comes from ``FAULT_PAUSE_BEFORE_COMMIT`` (seconds); the worker
prints ``WRITTEN`` once the UPDATE and the ledger INSERT are sent.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import sqlalchemy as sa  # noqa: E402

from conftest import make_app  # noqa: E402
from portal.domain import custody  # noqa: E402
from portal.domain.ledger import Actor  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Carnet, Pass, Programme, Tenant  # noqa: E402
from portal.models.ledger import Nature  # noqa: E402


def main(url: str, prefix: str, commune_slug: str, carnets: int) -> None:
    app = make_app(url)
    with app.app_context():
        session = db.session
        programme = session.execute(
            sa.select(Programme).where(Programme.prefix == prefix)).scalar_one()
        commune = session.execute(sa.select(Tenant).where(Tenant.slug == commune_slug)).scalar_one()
        carnet_ids = session.execute(
            sa.select(Carnet.id).where(Carnet.programme_id == programme.id)
            .order_by(Carnet.id).limit(carnets)).scalars().all()
        moved = custody.move(session, programme, nature=Nature.LIVRAISON,
                             criteria=[Pass.carnet_id.in_(carnet_ids)],
                             to_holder_id=commune.id, actor=Actor(None, None))
        session.flush()
        print(f"WRITTEN {moved}", flush=True)
        time.sleep(float(os.environ.get("FAULT_PAUSE_BEFORE_COMMIT", "0")))
        session.commit()
        print("COMMITTED", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
