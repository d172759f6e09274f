"""Queue backends behind ``enqueue``: RQ on Redis, inline, or recording (tests)."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from flask import current_app, g, has_request_context

from portal.observability.context import current_request_id

log = logging.getLogger("portal.jobs")

# Backoff between attempts of a task that failed (transient SMTP or database errors).
RETRY_INTERVALS = [10, 60, 300]


@dataclass
class InlineQueue:
    """No queue (development, tests): a task enqueued during a request runs
    when the request ends (its transaction closed, as a worker would see
    it): synchronously in tests, in a thread in development so a long print
    job does not hold the page; outside a request it runs at once."""

    testing: bool = False
    synchronous: bool = False     # JOBS_INLINE="sync": no thread either (production-mode tests)
    name: str = "inline"

    def enqueue(self, task: str, *args, **kwargs) -> str | None:
        from portal.jobs.tasks import TASKS
        if task not in TASKS:
            raise KeyError(task)
        call = (task, args, kwargs, current_request_id())
        if has_request_context() and not g.get("in_task"):
            g.setdefault("pending_tasks", []).append(call)
        else:
            self._run(call)
        return None

    def _run(self, call) -> None:
        from portal.jobs.tasks import execute
        task, args, kwargs, request_id = call
        try:
            execute(task, args, kwargs, request_id=request_id)
        except Exception:
            if self.testing:
                raise
            # logged by execute(); a worker would have retried it

    def run_pending(self, app) -> None:
        calls = g.pop("pending_tasks", [])
        if not calls:
            return
        from portal.extensions import db
        db.session.remove()          # end the request's transaction first (SQLite lock)
        if self.testing or self.synchronous:
            for call in calls:
                self._run(call)
            return

        def work():
            with app.app_context():
                for call in calls:
                    self._run(call)
        threading.Thread(target=work, name="inline-tasks", daemon=True).start()

    def depth(self) -> int:
        return 0

    def ping(self) -> None:
        return None


@dataclass
class RecordingQueue:
    """Keeps the enqueued tasks without running them (tests of what a request enqueues)."""

    calls: list = field(default_factory=list)
    name: str = "recording"

    def enqueue(self, task: str, *args, **kwargs) -> str | None:
        self.calls.append((task, args, kwargs))
        return f"recorded-{len(self.calls)}"

    def run_all(self) -> None:
        from portal.jobs.tasks import execute
        calls, self.calls = self.calls, []
        for task, args, kwargs in calls:
            execute(task, args, kwargs)

    def depth(self) -> int:
        return len(self.calls)

    def ping(self) -> None:
        return None


class RQQueue:
    """Tasks stored in Redis and run by ``flask --app wsgi worker`` (RQ)."""

    def __init__(self, redis_url: str, name: str = "portal", job_timeout: int = 3600):
        from redis import Redis
        self.connection = Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=10)
        self.name = name
        self.job_timeout = job_timeout

    @property
    def rq_queue(self):
        from rq import Queue
        return Queue(self.name, connection=self.connection)

    def enqueue(self, task: str, *args, **kwargs) -> str | None:
        from rq import Retry

        from portal.jobs.tasks import TASKS, execute
        if task not in TASKS:
            raise KeyError(task)
        request_id = current_request_id()
        job = self.rq_queue.enqueue(
            execute, task, args, kwargs, request_id=request_id,
            retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
            job_timeout=self.job_timeout, meta={"request_id": request_id},
            description=task, failure_ttl=30 * 24 * 3600)
        log.info("enqueued %s as %s", task, job.id, extra={"job_id": job.id, "task": task})
        return job.id

    def depth(self) -> int:
        return self.rq_queue.count

    def ping(self) -> None:
        self.connection.ping()


def make_queue(config: dict):
    if config.get("REDIS_URL") and not config.get("JOBS_INLINE"):
        return RQQueue(config["REDIS_URL"], config.get("RQ_QUEUE", "portal"))
    return InlineQueue(testing=bool(config.get("TESTING")),
                       synchronous=config.get("JOBS_INLINE") == "sync")


def init_app(app) -> None:
    import os
    app.extensions["jobs"] = make_queue(app.config)
    # The process that owns the app's connection pool (see tasks._after_fork).
    app.extensions["jobs_pid"] = os.getpid()

    @app.teardown_request
    def _run_inline_tasks(_error=None):
        queue = app.extensions["jobs"]
        if isinstance(queue, InlineQueue) and _error is None:
            queue.run_pending(app)


def get_queue():
    return current_app.extensions["jobs"]


def enqueue(task: str, *args, **kwargs) -> str | None:
    """Run ``task`` in the background (or inline without a queue)."""
    return get_queue().enqueue(task, *args, **kwargs)
