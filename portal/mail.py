"""Outgoing e-mail. Printed to the log in development and kept in an
in-memory outbox in tests; sent over SMTP when ``SMTP_HOST`` is set."""
from __future__ import annotations

import logging
import os
import smtplib
from email.message import EmailMessage

from flask import current_app

log = logging.getLogger("portal.mail")


def send_mail(to: str, subject: str, body: str) -> None:
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
    else:
        log.info("E-mail (not sent, no SMTP_HOST) to %s — %s\n%s", to, subject, body)
