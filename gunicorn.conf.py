"""gunicorn settings of the `web` process (Procfile). Environment:
PORTAL_BIND (default 0.0.0.0:$PORT, PORT 8000), WEB_CONCURRENCY (workers, default 2),
PROMETHEUS_MULTIPROC_DIR (metrics shared by the workers; cleared at start)."""
import os
import shutil

bind = os.environ.get("PORTAL_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = 30
# gunicorn answers a request line longer than this with its own English 414 page
# before the portal sees it: raised to gunicorn's maximum so that the portal's own,
# lower limit (portal/web/input_guard.py: 4 096 characters) answers, in French
# (JSON under /api).
limit_request_line = 8190
limit_request_field_size = 8190
graceful_timeout = 20
# Access lines come from the app's JSON logs (with the request id); keep gunicorn's errors.
accesslog = None
errorlog = "-"


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)
