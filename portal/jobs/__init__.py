"""Background work: one queue facade for print jobs, e-mail and the scheduled duties.

``enqueue("mail.deliver", …)`` names a task of ``portal.jobs.tasks.TASKS``.
With ``REDIS_URL`` set the task goes to RQ (Redis) and a worker process
(``flask --app wsgi worker``) runs it, retried with backoff on failure;
without it (development, tests) the task runs inline, in the caller's
process, so ``make run`` needs no Redis. Production (``PORTAL_ENV=production``)
refuses to start without a queue (``portal.config``).

The request id of the request that enqueued a task is carried into the job
(RQ job meta) and appears in the worker's log lines.
"""
from __future__ import annotations

from portal.jobs.queue import (  # noqa: F401
    InlineQueue, RecordingQueue, RQQueue, enqueue, get_queue, init_app)
