"""Test fixtures: a real, migrated database per test, on SQLite or PostgreSQL.

The leg is chosen by ``PORTAL_TEST_DB`` (``sqlite`` by default, or
``postgresql``). The schema is created only by the Alembic migrations: once
per session into a template database (empty, and with the demo data), which
each test copies (SQLite: file copy; PostgreSQL: ``CREATE DATABASE …
TEMPLATE``), so tests may commit freely and still start clean.
"""
from __future__ import annotations

import html
import itertools
import os
import re
import shutil
import uuid
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.domain import accounts

# scrypt at production cost makes every test user cost ~50 ms.
accounts.HASH_METHOD = "scrypt:1024:8:1"

LEG = os.environ.get("PORTAL_TEST_DB", "sqlite")
PG_ADMIN_URL = os.environ.get("PORTAL_TEST_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
_counter = itertools.count()
_RUN = uuid.uuid4().hex[:8]


def pytest_report_header(config):
    return f"database leg: {LEG}"


def pytest_collection_modifyitems(config, items):
    if LEG == "postgresql":
        return
    skip = pytest.mark.skip(reason="PostgreSQL only (SQLite leg)")
    for item in items:
        if "postgresql_only" in item.keywords:
            item.add_marker(skip)


def make_app(url: str, **overrides):
    config = {"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url,
              "SERVER_NAME": "localhost", "PASS_BASE_URL": "HTTP://LOCALHOST"}
    config.update(overrides)
    return create_app(config)


def _migrate(url: str, demo: bool) -> None:
    from portal.cli import upgrade
    from portal.extensions import db
    app = make_app(url)
    with app.app_context():
        upgrade()
        if demo:
            # Without the demo's two months of history (2 500 scans, half a
            # minute): tests/test_demo.py loads and checks the whole demo.
            from portal.demo import load_demo_data
            load_demo_data(db.session, history=False)
            db.session.commit()
        db.session.remove()
        db.engine.dispose()


class SqliteLeg:
    def __init__(self, tmp_root):
        self.tmp_root = tmp_root
        self.templates = {}

    def template(self, demo: bool) -> str:
        if demo not in self.templates:
            path = self.tmp_root / f"template-{'demo' if demo else 'empty'}.sqlite3"
            _migrate(f"sqlite:///{path}", demo)
            self.templates[demo] = path
        return self.templates[demo]

    def new_database(self, demo: bool, dest_dir) -> str:
        path = dest_dir / f"db-{next(_counter)}.sqlite3"
        shutil.copyfile(self.template(demo), path)
        return f"sqlite:///{path}"

    def blank_database(self, dest_dir) -> str:
        return f"sqlite:///{dest_dir / f'blank-{next(_counter)}.sqlite3'}"

    def drop(self, url: str) -> None:
        pass

    def close(self) -> None:
        pass


class PostgresLeg:
    def __init__(self):
        self.admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                                      poolclass=sa.pool.NullPool)
        self.templates = {}
        self.created = []

    def _url(self, name: str) -> str:
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    def _exec(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(sql)

    def template(self, demo: bool) -> str:
        if demo not in self.templates:
            name = f"pn_tmpl_{_RUN}_{'demo' if demo else 'empty'}"
            self._exec(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            _migrate(self._url(name), demo)
            self.templates[demo] = name
        return self.templates[demo]

    def new_database(self, demo: bool, dest_dir) -> str:
        name = f"pn_test_{_RUN}_{next(_counter)}"
        self._exec(f'CREATE DATABASE "{name}" TEMPLATE "{self.template(demo)}"')
        return self._url(name)

    def blank_database(self, dest_dir) -> str:
        name = f"pn_blank_{_RUN}_{next(_counter)}"
        self._exec(f'CREATE DATABASE "{name}"')
        return self._url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        for name in self.created:
            self._exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


@pytest.fixture(scope="session")
def leg(tmp_path_factory):
    backend = PostgresLeg() if LEG == "postgresql" else SqliteLeg(tmp_path_factory.mktemp("tmpl"))
    yield backend
    backend.close()


def _app_fixture(leg, tmp_path, demo: bool, **overrides):
    url = leg.new_database(demo, tmp_path)
    overrides.setdefault("PRINT_DIR", str(tmp_path / "prints"))
    overrides.setdefault("EXPORT_DIR", str(tmp_path / "exports"))
    app = make_app(url, **overrides)
    yield app
    from portal.extensions import db
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    leg.drop(url)


@pytest.fixture
def app(leg, tmp_path):
    """An application on a fresh database holding the demo data."""
    yield from _app_fixture(leg, tmp_path, demo=True)


@pytest.fixture
def empty_app(leg, tmp_path):
    """An application on a freshly migrated, empty database."""
    yield from _app_fixture(leg, tmp_path, demo=False)


@pytest.fixture
def db_session(app):
    """The app's session inside an app context. Do not combine with HTTP
    requests in the same test: the pushed context would be shared (``g``);
    use ``with app.app_context():`` around database reads there instead."""
    from portal.extensions import db
    with app.app_context():
        yield db.session


@pytest.fixture
def database_url(app):
    return app.config["SQLALCHEMY_DATABASE_URI"]


_TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')


def _response_text(self) -> str:
    """Page text with HTML entities decoded (Jinja escapes apostrophes)."""
    return html.unescape(self.get_data(as_text=True))


# ``response.text`` in tests: the decoded body.
from werkzeug.test import TestResponse  # noqa: E402
TestResponse.text = property(_response_text)


class Browser:
    """A test client that signs in and sends the CSRF token like a browser."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()

    def csrf_token(self) -> str:
        html = self.client.get("/connexion").get_data(as_text=True)
        match = _TOKEN.search(html)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def login(self, email: str, password: str = "demo-pass-numerique", *,
              second_factor: bool = True):
        if "@" not in email:
            email = f"{email}@demo.pass-numerique.fr"
        response = self.client.post("/connexion", data={
            "email": email, "password": password, "csrf_token": self.csrf_token()})
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        if second_factor and "/connexion/" in response.location:
            self.pass_second_factor(email, response.location)
        return self

    def pass_second_factor(self, email: str, location: str):
        """Do what the administrator's authenticator app does (enrol if needed,
        then type the code of a step not used yet)."""
        from helpers import next_totp_code
        path = urlsplit(location).path
        if "activation" in path:
            assert self.client.get(path).status_code == 200
        response = self.client.post(path, data={"code": next_totp_code(self.app, email),
                                                 "csrf_token": self.csrf_token()})
        assert response.status_code in (200, 303), response.text[:500]
        return response

    def get(self, url, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url, data=None, *, csrf: bool = True, headers=None, **kwargs):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.csrf_token())
        return self.client.post(url, data=data, headers=headers, **kwargs)


@pytest.fixture
def browser(app):
    return Browser(app)


@pytest.fixture
def browser_factory(app):
    return lambda: Browser(app)
