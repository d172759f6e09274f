"""Engine settings per database.

SQLite (embedded default): WAL, a busy timeout, foreign keys, and the
SQLAlchemy recipe that takes the write lock at BEGIN (``BEGIN IMMEDIATE``)
so that concurrent writers wait instead of failing with "database is
locked" (measured in docs/ENGINEERING notes: 0 errors, 0 doubles).
PostgreSQL (production): psycopg 3, READ COMMITTED; ``pool_pre_ping`` so
that connections killed by a restart of the server are replaced unseen, and
a connect timeout (``DATABASE_CONNECT_TIMEOUT``, 5 s) so that an unreachable
server is a French 503 quickly instead of a request hanging for psycopg's
default 130 s, past gunicorn's worker timeout (the worker is aborted and the
client gets gunicorn's bare English 500 page).
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option of a connection that only reads, for long (an export job):
# on SQLite its transaction begins DEFERRED — in WAL mode it reads one snapshot
# without holding the write lock that every other connection would wait for.
LONG_READ = "portal_long_read"
CONNECT_TIMEOUT_S = 5


def engine_options(url: str, connect_timeout: int = CONNECT_TIMEOUT_S) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                 "check_same_thread": False}}
    return {"pool_pre_ping": True, "connect_args": {"connect_timeout": connect_timeout}}


def configure_engine(engine: sa.engine.Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(LONG_READ)
                             else "BEGIN IMMEDIATE")
