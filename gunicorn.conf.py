"""gunicorn settings of the `web` process (Procfile). Environment:
PORTAL_BIND (default 0.0.0.0:$PORT, PORT 8000), WEB_CONCURRENCY (workers, default 2),
PROMETHEUS_MULTIPROC_DIR (metrics shared by the workers; cleared at start)."""
import os
import shutil

bind = os.environ.get("PORTAL_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = 30
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
