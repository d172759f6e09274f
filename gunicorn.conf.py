"""gunicorn settings read from the working directory (``gunicorn wsgi:app``).

gunicorn answers a request line longer than ``limit_request_line`` with its
own English 414 page before the portal sees it. The limit is set to
gunicorn's maximum so that the portal's own, lower limit
(``portal/web/input_guard.py``: 4 096 characters) answers first, in French
(JSON under ``/api``).
"""
limit_request_line = 8190
limit_request_field_size = 8190
