"""Prometheus metrics (``/metrics``).

Multiprocess-safe: with ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn workers,
RQ work horses on the same host) every process writes its samples to that
directory and ``/metrics`` aggregates them (prometheus_client's multiprocess
mode; ``gunicorn.conf.py`` marks dead workers). The queue depth is read from
Redis at scrape time.
"""
from __future__ import annotations

import ipaddress
import os

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest)
from prometheus_client.core import GaugeMetricFamily

REQUEST_LATENCY = Histogram("portal_request_duration_seconds",
                            "Request latency by endpoint group (blueprint)",
                            ["group", "method"])
SCANS = Counter("portal_scans_total", "Pass scans by outcome", ["outcome"])
JOB_DURATION = Histogram("portal_job_duration_seconds", "Background task durations", ["task"],
                         buckets=(0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, float("inf")))
JOB_FAILURES = Counter("portal_job_failures_total", "Background task failures", ["task"])
GATE_REFUSALS = Counter("portal_gate_refusals_total", "Requests refused by the gate",
                        ["status"])


class QueueDepthCollector:
    """``portal_queue_depth``: jobs waiting in the queue, read when scraped."""

    def __init__(self, queue):
        self.queue = queue

    def collect(self):
        family = GaugeMetricFamily("portal_queue_depth", "Jobs waiting in the queue",
                                   labels=["queue"])
        try:
            family.add_metric([self.queue.name], self.queue.depth())
        except Exception:           # Redis unreachable: no sample (readyz says why)
            pass
        yield family


def render(queue) -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY
        body = generate_latest(REGISTRY)
    depth = CollectorRegistry()
    depth.register(QueueDepthCollector(queue))
    return body + generate_latest(depth), CONTENT_TYPE_LATEST


def allowed(remote_addr: str | None, authorization: str, token: str | None,
            networks: str) -> bool:
    """From a configured address (``METRICS_ALLOWED_IPS``) or with ``METRICS_TOKEN``."""
    import hmac
    scheme, _, given = authorization.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
        return True
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    for network in filter(None, (n.strip() for n in networks.split(","))):
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def count_scan(outcome) -> None:
    """One scan answered (``scanning.Outcome``): consumed, replayed, or refused by code."""
    if outcome.replay:
        label = "rejeu"
    elif outcome.error is not None:
        label = getattr(outcome.error, "code", None) or type(outcome.error).__name__
    else:
        label = "consomme"
    SCANS.labels(outcome=str(label)[:40]).inc()
