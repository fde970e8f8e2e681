"""The scheduled job: sends due messages every few seconds, queues reminders every minute,
and deletes the registrations of long-past events every hour."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy.orm import Session

from .database import utcnow
from .extensions import db
from .mail_delivery import DeliveryReport, send_due_messages
from .privacy import purge_expired_registrations
from .reminders import queue_due_reminders

log = logging.getLogger(__name__)


def run_once(app: Flask, stop: threading.Event | None = None) -> DeliveryReport:
    """One pass of both jobs (also what `mail send-due` does)."""
    queue_reminders(app)
    return send_due(app, stop)


@contextmanager
def job_session(app: Flask) -> Iterator[Session]:
    """A database session of the job's own, in the app's context, closed when the job ends."""
    with app.app_context():
        try:
            yield db.session
        finally:
            db.session.remove()


def send_due(app: Flask, stop: threading.Event | None = None) -> DeliveryReport:
    total = DeliveryReport()
    with job_session(app) as session:
        # Drains what is due now, batch after batch, unless asked to stop.
        while not (stop and stop.is_set()):
            report = send_due_messages(session, utcnow(), stop)
            total.add(report)
            if report.sent or report.failed or report.retried:
                log.info(
                    "mail: %d sent, %d to retry, %d failed",
                    report.sent,
                    report.retried,
                    report.failed,
                )
            if not (report.sent or report.failed):
                break
    return total


def queue_reminders(app: Flask) -> None:
    with job_session(app) as session:
        queued = queue_due_reminders(session)
        session.commit()
        if queued:
            log.info("mail: %d reminders queued", queued)


def purge_expired(app: Flask) -> None:
    with job_session(app) as session:
        removed = purge_expired_registrations(session, app.config["RETENTION_DAYS_AFTER_EVENT"])
        session.commit()
        for slug, number in removed.items():
            if number:
                log.info("privacy: %s: %d registrations of the past event deleted", slug, number)


def start_scheduler(app: Flask, stop: threading.Event) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    common = {"max_instances": 1, "coalesce": True, "next_run_time": utcnow()}
    scheduler.add_job(
        send_due,
        "interval",
        seconds=app.config["MAIL_SEND_INTERVAL_SECONDS"],
        args=(app, stop),
        id="send-due-messages",
        **common,
    )
    scheduler.add_job(
        queue_reminders, "interval", seconds=60, args=(app,), id="queue-due-reminders", **common
    )
    scheduler.add_job(purge_expired, "interval", hours=1, args=(app,), id="purge-expired", **common)
    scheduler.start()
    return scheduler


def run_worker(app: Flask) -> None:
    """Runs until SIGTERM or SIGINT, then finishes the message in hand and exits."""
    lease, timeout = app.config["MAIL_LEASE_SECONDS"], app.config["MAIL_TIMEOUT_SECONDS"]
    if lease < 10 * timeout:
        log.warning(
            "MAIL_LEASE_SECONDS (%d) is below 10 x MAIL_TIMEOUT_SECONDS (%d): a slow relay "
            "could let another worker send a message again",
            lease,
            timeout,
        )
    stop = threading.Event()

    def request_stop(signum, _frame):
        log.info("mail worker: %s received, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    scheduler = start_scheduler(app, stop)
    stop.wait()
    scheduler.shutdown(wait=True)
