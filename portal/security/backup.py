"""Consistent backups of the database (no Flask).

* SQLite: Python's online backup API (``sqlite3.Connection.backup``) copies
  a consistent snapshot even while the portal writes (WAL mode).
* PostgreSQL: ``pg_dump -Fc`` (custom format, restored with ``pg_restore``).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess

import sqlalchemy as sa


def _sqlite_path(url: sa.engine.URL) -> str:
    if not url.database or url.database == ":memory:":
        raise ValueError("in-memory SQLite database: nothing to back up")
    return url.database


def backup(engine: sa.engine.Engine, output: str) -> None:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        source = sqlite3.connect(_sqlite_path(url))
        target = sqlite3.connect(output)
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
        return
    if url.get_backend_name() == "postgresql":
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise RuntimeError("pg_dump introuvable : installez postgresql-client.")
        subprocess.run([pg_dump, "-Fc", "--no-owner", "-f", output, *_pg_args(url)],
                       check=True, env=_pg_env(url))
        return
    raise ValueError(f"unsupported database: {url.get_backend_name()}")


def _pg_args(url: sa.engine.URL) -> list[str]:
    args = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)]
    if url.username:
        args += ["-U", url.username]
    return args + ["-d", url.database]


def _pg_env(url: sa.engine.URL) -> dict:
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    return env


def restore_postgresql(url: sa.engine.URL, dump: str) -> None:
    """Restore a ``pg_dump -Fc`` file into the (existing, empty) database of ``url``."""
    pg_restore = shutil.which("pg_restore")
    if pg_restore is None:
        raise RuntimeError("pg_restore introuvable : installez postgresql-client.")
    subprocess.run([pg_restore, "--no-owner", "--exit-on-error", *_pg_args(url), dump],
                   check=True, env=_pg_env(url))
