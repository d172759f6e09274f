"""Configuration read from the environment.

Every secret comes from the environment. Development and test runs get
fixed, clearly-labelled defaults; any other environment refuses to start
without them (see ``ConfigError``).
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"

# Development-only defaults: never used outside PORTAL_ENV=development/testing.
_DEV_SECRETS = {
    "SECRET_KEY": "dev-only-secret-key-not-for-production",
    "PASS_MAC_KEYS": "D1:ZGV2LW9ubHktcGFzcy1tYWMta2V5LW51bWJlci1vbmU=",
    "LEDGER_HMAC_KEY": "ZGV2LW9ubHktbGVkZ2VyLWhtYWMta2V5",
}


class ConfigError(RuntimeError):
    """Raised at start-up when a required setting is missing."""


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the operator used."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_config(overrides: dict | None = None) -> dict:
    env = os.environ
    overrides = dict(overrides or {})
    portal_env = overrides.get("PORTAL_ENV") or env.get("PORTAL_ENV", "production")
    relaxed = portal_env in ("development", "testing")

    def secret(name: str) -> str:
        if name in overrides:
            return overrides[name]
        value = env.get(name)
        if value:
            return value
        if relaxed:
            return _DEV_SECRETS[name]
        raise ConfigError(
            f"{name} is not set. Set it in the environment "
            f"(PORTAL_ENV={portal_env}); development defaults are only used "
            "with PORTAL_ENV=development."
        )

    default_db = "sqlite:///" + str(INSTANCE_DIR / "portal.sqlite3")
    https = env.get("PORTAL_HTTPS", "0" if relaxed else "1") == "1"
    config = {
        "PORTAL_ENV": portal_env,
        "SECRET_KEY": secret("SECRET_KEY"),
        "PASS_MAC_KEYS": secret("PASS_MAC_KEYS"),
        "PASS_MAC_ACTIVE_KEY": env.get("PASS_MAC_ACTIVE_KEY", ""),
        "LEDGER_HMAC_KEY": secret("LEDGER_HMAC_KEY"),
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(
            env.get("DATABASE_URL", default_db)),
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        # PostgreSQL: seconds to wait for a connection before the French 503
        # (must stay well under gunicorn's worker timeout, 30 s by default).
        "DATABASE_CONNECT_TIMEOUT": int(env.get("DATABASE_CONNECT_TIMEOUT", "5") or 5),
        "REDIS_URL": env.get("REDIS_URL") or None,
        # Job queue (portal.jobs): RQ queue name; seconds without a heartbeat after
        # which a print job « en cours » is taken as abandoned by a dead worker.
        "RQ_QUEUE": env.get("RQ_QUEUE", "portal"),
        "JOB_STALE_SECONDS": int(env.get("JOB_STALE_SECONDS", "90") or 90),
        # Base URL of links built outside a request: e-mails written by workers,
        # the invitation printed by ``flask --app wsgi setup``.
        "PORTAL_BASE_URL": env.get("PORTAL_BASE_URL", "http://127.0.0.1:5000"),
        # Observability: JSON logs (default outside development), /metrics access.
        "LOG_FORMAT": env.get("LOG_FORMAT", "text" if relaxed else "json"),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO"),
        "METRICS_TOKEN": env.get("METRICS_TOKEN") or None,
        "METRICS_ALLOWED_IPS": env.get("METRICS_ALLOWED_IPS", "127.0.0.1/32,::1/128"),
        "SENTRY_DSN": env.get("SENTRY_DSN") or None,
        # Without SMTP_HOST: write e-mails as .eml files in this pickup directory.
        "MAIL_DIR": env.get("MAIL_DIR") or None,
        # Base of the URL printed in QR codes (uppercase keeps QR alphanumeric mode).
        "PASS_BASE_URL": env.get("PASS_BASE_URL", "HTTP://127.0.0.1:5000"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "PREFERRED_URL_SCHEME": "https" if https else "http",
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        # CSRF tokens live as long as the session: a scan page stays open all day.
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_SSL_STRICT": https,
        "PASSWORD_RESET_MAX_AGE": 30 * 60,
        # Largest request body (a scan photo is the largest upload): beyond
        # it Werkzeug answers 413, rendered in French by portal/web/errors.py.
        "MAX_CONTENT_LENGTH": int(env.get("MAX_CONTENT_LENGTH", str(10 * 1024 * 1024))
                                  or 10 * 1024 * 1024),
        # Form fields (not files) kept in memory: Werkzeug's default is 500 KB.
        "MAX_FORM_MEMORY_SIZE": 500 * 1024,
        # (failures allowed, window in seconds) per throttle key. Policy
        # (docs/SECURITY.md): strict per account+IP, loose and short per
        # account, so that a third party cannot lock a user out for long.
        "LOGIN_THROTTLE": {"per_ip": (30, 900), "per_account_ip": (5, 900),
                           "per_account": (100, 300), "pass_check": (20, 600)},
        # Number of reverse proxies in front of the app whose X-Forwarded-* to trust.
        "PORTAL_PROXIES": int(env.get("PORTAL_PROXIES", "0") or 0),
        # Where print jobs write their PDFs (shared by every worker).
        "PRINT_DIR": env.get("PRINT_DIR", str(INSTANCE_DIR / "prints")),
        # Where export jobs write their files (shared by every web host and worker),
        # and how long a finished export stays downloadable.
        "EXPORT_DIR": env.get("EXPORT_DIR", str(INSTANCE_DIR / "exports")),
        "EXPORT_TTL_HOURS": int(env.get("EXPORT_TTL_HOURS", "24") or 24),
        # Development/tests only: pretend today is this ISO date (see portal/web/clock.py).
        "PORTAL_TODAY": env.get("PORTAL_TODAY") if relaxed else None,
        "MAIL_SENDER": env.get("MAIL_SENDER", "ne-pas-repondre@pass-numerique.example"),
        # Issue 13 (PORTAL_BASE_URL above also serves the invitation printed by
        # ``flask --app wsgi setup``).
        # Sign-in sessions end after this much inactivity, and after this
        # absolute lifetime whatever the activity (expired rows are purged).
        "SESSION_IDLE_MINUTES": int(env.get("SESSION_IDLE_MINUTES", "120") or 120),
        "SESSION_MAX_HOURS": int(env.get("SESSION_MAX_HOURS", "12") or 12),
        # Sensitive actions ask for the password again when it was last typed
        # longer ago than this.
        "REAUTH_MINUTES": int(env.get("REAUTH_MINUTES", "5") or 5),
        "TESTING": portal_env == "testing",
    }
    config.update(overrides)
    # Production needs Redis: for the job queue, and for throttling counters
    # shared by every worker (per-worker memory would multiply each limit by
    # the number of workers, docs/SECURITY.md).
    if not relaxed and not config["REDIS_URL"]:
        raise ConfigError(
            f"REDIS_URL is not set (PORTAL_ENV={portal_env}): production needs the job queue "
            "(print jobs, e-mail, scheduled duties run in `flask --app wsgi worker`) and "
            "throttling counters shared by every worker. Jobs run inline only with "
            "PORTAL_ENV=development.")
    config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
        config["SQLALCHEMY_DATABASE_URI"])
    return config
