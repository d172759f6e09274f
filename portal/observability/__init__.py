"""Observability: request ids, JSON logs, Prometheus metrics, readiness, Sentry."""
