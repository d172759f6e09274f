"""Outgoing e-mail, always through the job queue (``portal.jobs``).

``send_mail`` enqueues a ``mail.deliver`` task: a worker sends it (retried
with backoff when the SMTP server fails); without a queue it runs when the
request ends. ``deliver`` prints to the log in development, keeps the
message in an in-memory outbox in tests, and sends over SMTP when
``SMTP_HOST`` is set.
"""
from __future__ import annotations

import logging
import os
import smtplib
from email.message import EmailMessage

from flask import current_app

log = logging.getLogger("portal.mail")


def send_mail(to: str, subject: str, body: str) -> None:
    """Send an e-mail in the background (the caller never waits for SMTP)."""
    from portal.jobs import enqueue
    enqueue("mail.deliver", to, subject, body)


def deliver(to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_SENDER"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    outbox = current_app.extensions.get("outbox")
    if outbox is not None:
        outbox.append(message)
    host = os.environ.get("SMTP_HOST")
    if host:
        with smtplib.SMTP(host, int(os.environ.get("SMTP_PORT", "587")), timeout=10) as smtp:
            if os.environ.get("SMTP_STARTTLS", "1") == "1":
                smtp.starttls()
            if os.environ.get("SMTP_USER"):
                smtp.login(os.environ["SMTP_USER"], os.environ.get("SMTP_PASSWORD", ""))
            smtp.send_message(message)
    elif current_app.config.get("MAIL_DIR"):
        # A directory of .eml files (the production-stack test reads the worker's mail there).
        import uuid
        from pathlib import Path
        directory = Path(current_app.config["MAIL_DIR"])
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.eml"
        (directory / name).write_bytes(bytes(message))
    else:
        log.info("E-mail (not sent, no SMTP_HOST) to %s — %s\n%s", to, subject, body)
