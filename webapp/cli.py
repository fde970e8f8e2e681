"""Command-line groups: `flask --app wsgi event …`, `mail …`, `reminders …`,
`registrations …`, `users …`, `privacy …`, and `dev` (the development server of `make run`)."""

from __future__ import annotations

import getpass
import logging
import os
import sys
import threading
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError
from werkzeug.serving import run_simple

from .accounts import AccountError, all_users, create_user, find_user, set_active
from .audit import Actor
from .database import utcnow
from .event_file import EventFileError, load_event, read_event_file, resolve_date
from .events import find_current_event
from .extensions import db
from .mail_delivery import outbox_counts, recent_failures
from .mail_job import run_once, run_worker, start_scheduler
from .mail_sink import start_mail_sink
from .models import Role
from .privacy import purge_expired_registrations
from .registration import NothingToCancelError, cancel_registration, find_live_registration
from .reminders import send_reminder_mailing
from .roster import event_roster

event_cli = AppGroup("event", help="Load and inspect events.")


@event_cli.command("load")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--date",
    "move_to",
    help="Move the event to this date (YYYY-MM-DD, or +30d for 30 days from today), "
    "for a demo; the page then says the real date.",
)
def load_event_command(path: Path, move_to: str | None) -> None:
    """Create or update the event described by the TOML file PATH."""
    try:
        data = read_event_file(path)
        day = resolve_date(move_to, utcnow().date()) if move_to else None
        event, promoted = load_event(db.session, data, move_to=day)
        db.session.commit()
    except EventFileError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    except IntegrityError as error:
        # A registration took a seat between our check and the new capacity.
        db.session.rollback()
        raise click.ClickException(
            f"the database refused the change, nothing was changed ({error.orig}); try again"
        ) from error
    click.echo(
        f"Loaded {event.slug}: {event.title}, {event.date.isoformat()}, "
        f"{len(event.workshops)} workshops, {len(event.programme)} programme items."
    )
    if promoted:
        click.echo(f"{promoted} waiting participants got a seat; the mail job tells them.")


mail_cli = AppGroup("mail", help="Deliver the outbox.")


@mail_cli.command("worker")
def mail_worker_command() -> None:
    """Send due messages every few seconds, queue reminders every minute and purge past
    registrations every hour, until stopped."""
    _log_to_terminal()
    run_worker(current_app._get_current_object())


@mail_cli.command("send-due")
def mail_send_due_command() -> None:
    """One pass: queue due reminders, send every due message, exit (for cron).

    Exits with status 1 when a message could not be sent in this pass (kept for a retry, or
    failed for good), so that cron reports it."""
    report = run_once(current_app._get_current_object())
    _print_status()
    if not report.all_delivered:
        click.echo(
            f"{report.retried} message(s) kept for a retry, {report.failed} failed in this pass.",
            err=True,
        )
        raise SystemExit(1)


@mail_cli.command("status")
def mail_status_command() -> None:
    """Messages per state, and the last errors."""
    _print_status()


def _log_to_terminal() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # Every scheduled run would otherwise be logged; ours say when something was sent.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd, the local sink


def _print_status() -> None:
    counts = outbox_counts(db.session)
    click.echo(", ".join(f"{state}: {number}" for state, number in counts.items()))
    for message in recent_failures(db.session):
        click.echo(
            f"  [{message.state}] #{message.id} {message.kind} to {message.recipient} "
            f"after {message.attempts} attempts: {message.last_error}"
        )


reminders_cli = AppGroup("reminders", help="Reminder mailings.")


@reminders_cli.command("send")
@click.option("--workshop", "workshop_number", type=int, help="Only this workshop's participants.")
@click.option(
    "--key",
    "mailing_key",
    type=click.STRING,
    help="Names the mailing (default: the scope and today's date); the same key again queues "
    "nothing.",
)
def reminders_send_command(workshop_number: int | None, mailing_key: str | None) -> None:
    """Queue a reminder now to every confirmed participant (or one workshop's)."""
    event = _current_event_or_fail()
    if mailing_key is not None and not (0 < len(mailing_key) <= 100):
        raise click.BadParameter("between 1 and 100 characters", param_hint="--key")
    if workshop_number is not None and workshop_number not in {w.number for w in event.workshops}:
        raise click.BadParameter(f"{event.slug} has no workshop {workshop_number}")
    queued = send_reminder_mailing(
        db.session, event, workshop_number, mailing_key, actor=cli_actor()
    )
    db.session.commit()
    click.echo(f"{queued} reminders queued; the mail job sends them.")


registrations_cli = AppGroup("registrations", help="The participants of the current event.")


def cli_actor() -> Actor:
    """Changes made from a terminal are logged with the system account that made them."""
    return Actor(f"cli:{getpass.getuser()}")


def _current_event_or_fail():
    event = find_current_event()
    if event is None:
        raise click.ClickException("no event is loaded (flask --app wsgi event load PATH)")
    return event


@registrations_cli.command("list")
def registrations_list_command() -> None:
    """Everyone registered, workshop by workshop: seats, waiting list, lunch and dietary needs."""
    event = _current_event_or_fail()
    roster = event_roster(db.session, event)
    for workshop_roster in roster.workshops:
        workshop = workshop_roster.workshop
        click.echo(
            f"Workshop {workshop.number}: {workshop.title} · {workshop.seats_taken} of "
            f"{workshop.capacity} seats taken, {len(workshop_roster.waiting)} waiting"
        )
        places = [("seat", r) for r in workshop_roster.seated] + [
            (f"waiting #{position}", r)
            for position, r in enumerate(workshop_roster.waiting, start=1)
        ]
        for place, registration in places:
            details = [f"  {place:<11} {registration.full_name} <{registration.email}>"]
            if event.lunch_offered:
                details.append("lunch" if registration.lunch else "no lunch")
            if registration.dietary:
                details.append(f"diet: {' '.join(registration.dietary.split())}")  # one line
            click.echo(" · ".join(details))
    seated = roster.seated
    summary = f"{len(seated)} seated"
    if event.lunch_offered:
        summary += f", {roster.lunch_count} for lunch"
    click.echo(summary + f", {sum(bool(r.dietary) for r in seated)} with dietary needs.")


@registrations_cli.command("cancel")
@click.argument("email")
def registrations_cancel_command(email: str) -> None:
    """Cancel the registration of EMAIL (a participant who wrote that they cannot come): the
    seat goes to the first person waiting, and both are told by e-mail."""
    event = _current_event_or_fail()
    registration = find_live_registration(db.session, event, email)
    if registration is None:
        raise click.ClickException(f"no registration for {email.strip()} at {event.slug}")
    try:
        promoted = cancel_registration(db.session, registration, cli_actor())
        db.session.commit()
    except NothingToCancelError as error:
        db.session.rollback()
        raise click.ClickException(f"{email.strip()} was cancelled meanwhile") from error
    click.echo(f"Cancelled: {registration.full_name}, workshop {registration.workshop.number}.")
    if promoted:
        click.echo(f"{promoted} waiting participant(s) got the seat.")
    click.echo("The mail job tells them.")


users_cli = AppGroup("users", help="Dashboard accounts (organisers and admins).")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from one line of standard input."
)
def users_create_command(email: str, role: str, password_stdin: bool) -> None:
    """Create a dashboard account; asks for its password twice (hidden)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(db.session, cli_actor(), email, password, Role(role))
    except AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"Created {user.role} account {user.email}.")


@users_cli.command("list")
def users_list_command() -> None:
    """Every dashboard account, its role and whether it is active."""
    for user in all_users(db.session):
        state = "active" if user.active else "disabled"
        last = user.last_login_at.isoformat(timespec="minutes") if user.last_login_at else "never"
        click.echo(f"{user.email:<40} {user.role:<10} {state:<9} last login: {last}")


@users_cli.command("disable")
@click.argument("email")
def users_disable_command(email: str) -> None:
    """Disable an account: its sessions end at their next request."""
    user = find_user(db.session, email)
    if user is None:
        raise click.ClickException(f"no account for {email.strip()}")
    set_active(db.session, cli_actor(), user, False)
    db.session.commit()
    click.echo(f"Disabled {user.email}.")


privacy_cli = AppGroup("privacy", help="Personal data.")


@privacy_cli.command("purge")
def privacy_purge_command() -> None:
    """Delete the registrations of events that ended RETENTION_DAYS_AFTER_EVENT days ago
    (the mail worker also does it every hour)."""
    days = current_app.config["RETENTION_DAYS_AFTER_EVENT"]
    removed = purge_expired_registrations(db.session, days)
    click.echo(f"{removed} registrations deleted (events ended more than {days} days ago).")


@click.command("dev")
@click.option("--port", default=5000, show_default=True)
def dev_command(port: int) -> None:
    """Serve the site with the mail job and a local SMTP sink (development only)."""
    app = current_app._get_current_object()
    if "PUBLIC_URL" not in os.environ:
        app.config["PUBLIC_URL"] = f"http://127.0.0.1:{port}"  # so that mailed links work
    sink_dir = app.config.get("MAIL_SINK_DIR")
    if not sink_dir:
        raise click.ClickException("set MAIL_SINK_DIR (make run does) to run the local SMTP sink")
    _log_to_terminal()
    sink = start_mail_sink(Path(sink_dir), app.config["MAIL_PORT"])
    stop = threading.Event()
    scheduler = start_scheduler(app, stop)
    click.echo(f"Atelier: http://127.0.0.1:{port}/  ·  received mails: /dev/mails")
    try:
        # Flask refuses app.run() inside its own CLI; Werkzeug's server is what it would use.
        run_simple("127.0.0.1", port, app, threaded=True)
    finally:
        stop.set()
        scheduler.shutdown(wait=True)
        sink.stop()


def register_commands(app: Flask) -> None:
    app.cli.add_command(event_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(reminders_cli)
    app.cli.add_command(registrations_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(privacy_cli)
    app.cli.add_command(dev_command)
