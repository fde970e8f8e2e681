"""Command-line groups: `flask --app wsgi event …`, `mail …`, `reminders …`,
`registrations …`, `users …`, `privacy …`, and `dev` (the development server of `make run`)."""

from __future__ import annotations

import getpass
import logging
import os
import socket
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.exc import IntegrityError
from werkzeug.serving import make_server

from .accounts import AccountError, all_users, create_user, find_user, set_active
from .audit import Actor
from .config import record_development_public_url
from .database import utcnow
from .event_file import EventFileError, load_event, read_event_file, resolve_date
from .events import event_summaries, find_current_event
from .extensions import db
from .mail_delivery import outbox_counts, recent_failures
from .mail_job import run_once, run_worker, start_scheduler
from .mail_sink import start_mail_sink
from .models import Role
from .privacy import purge_expired_registrations
from .registration import NothingToCancelError, cancel_registration, find_live_registration
from .reminders import send_reminder_mailing
from .roster import event_roster

NO_EVENT = "no event is loaded (flask --app wsgi event load PATH)"

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
        event, promoted = load_event(db.session, data, move_to=day, actor=cli_actor())
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


@event_cli.command("list")
def list_events_command() -> None:
    """Every loaded event, and which one the site serves (*)."""
    summaries = event_summaries(db.session)
    if not summaries:
        raise click.ClickException(NO_EVENT)
    served = find_current_event()
    for summary in summaries:
        event = summary.event
        click.echo(
            f"{'*' if event is served else ' '} {event.slug}: {event.title}, "
            f"{event.date.isoformat()}, {summary.workshops} workshops, "
            f"{summary.registrations} registrations"
        )
    slug = current_app.config["EVENT_SLUG"]
    if slug and served is None:
        click.echo(f"EVENT_SLUG={slug} names no loaded event: the site answers 404.")
    elif slug:
        click.echo(f"* the site serves {slug} (EVENT_SLUG).")
    else:
        click.echo(f"* the site serves {served.slug}, the latest date (EVENT_SLUG to choose).")


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
    click.echo("All events: " + ", ".join(f"{state}: {number}" for state, number in counts.items()))
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
    click.echo(f"{event.slug}: {queued} reminders queued; the mail job sends them.")


registrations_cli = AppGroup("registrations", help="The participants of the current event.")


def cli_actor() -> Actor:
    """Changes made from a terminal are logged with the system account that made them."""
    return Actor(f"cli:{getpass.getuser()}")


def _current_event_or_fail():
    event = find_current_event()
    if event is None:
        raise click.ClickException(NO_EVENT)
    return event


@registrations_cli.command("list")
def registrations_list_command() -> None:
    """Everyone registered, workshop by workshop: seats, waiting list, lunch and dietary needs."""
    event = _current_event_or_fail()
    roster = event_roster(db.session, event)
    click.echo(f"{event.slug}: {event.title}, {event.date.isoformat()}")
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
        raise click.ClickException(
            f"{email.strip()} at {event.slug} was cancelled meanwhile"
        ) from error
    click.echo(
        f"{event.slug} ({event.title}): cancelled {registration.full_name} "
        f"<{registration.email}>, workshop {registration.workshop.number}."
    )
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
    try:
        set_active(db.session, cli_actor(), user, False)
    except AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"Disabled {user.email}.")


privacy_cli = AppGroup("privacy", help="Personal data.")


@privacy_cli.command("purge")
def privacy_purge_command() -> None:
    """Delete the registrations of events that ended RETENTION_DAYS_AFTER_EVENT days ago
    (the mail worker also does it every hour)."""
    days = current_app.config["RETENTION_DAYS_AFTER_EVENT"]
    removed = purge_expired_registrations(db.session, days, cli_actor())
    db.session.commit()
    for slug, number in removed.items():
        click.echo(f"{slug}: {number} registrations deleted (ended more than {days} days ago).")
    if not removed:
        click.echo(f"0 registrations deleted: no event ended more than {days} days ago.")


@click.command("dev")
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def dev_command(port: int) -> None:
    """Serve the site with the mail job and a local SMTP sink (development only)."""
    app = current_app._get_current_object()
    sink_dir = app.config.get("MAIL_SINK_DIR")
    if not sink_dir:
        raise click.ClickException("set MAIL_SINK_DIR (make run does) to run the local SMTP sink")
    _log_to_terminal()
    with ExitStack() as running:
        # Both ports are taken before anything starts, so that a busy one (AirPlay on macOS
        # holds 5000, Mailpit and MailHog 8025) stops us with one line, not a traceback.
        try:
            listener = running.enter_context(socket.create_server(("127.0.0.1", port)))
        except OSError as error:
            raise _cannot_listen(
                "the site", port, error, "PORT=5001, or flask dev --port 5001"
            ) from error
        mail_port = app.config["MAIL_PORT"]
        try:
            running.callback(start_mail_sink(Path(sink_dir), mail_port).stop)
        except OSError as error:
            raise _cannot_listen(
                "the local SMTP sink", mail_port, error, "MAIL_PORT=2525, or set MAIL_PORT"
            ) from error
        if app.config["PUBLIC_URL_FOLLOWS_DEV_SERVER"]:
            app.config["PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        # Commands run meanwhile, in another terminal, then queue mails with the same links.
        record_development_public_url(app.config["PUBLIC_URL"])
        stop = threading.Event()
        running.callback(start_scheduler(app, stop).shutdown, wait=True)
        running.callback(stop.set)  # callbacks run last first: the job stops, then the scheduler
        # Flask refuses app.run() inside its own CLI; Werkzeug's server is what it would use.
        server = make_server("127.0.0.1", port, app, threaded=True, fd=listener.fileno())
        click.echo(f"Atelier: http://127.0.0.1:{port}/  ·  received mails: /dev/mails")
        server.serve_forever()


def _cannot_listen(what: str, port: int, error: OSError, other_port: str) -> click.ClickException:
    reason = os.strerror(error.errno) if error.errno else str(error)
    return click.ClickException(
        f"{what} cannot listen on 127.0.0.1:{port} ({reason}); "
        f"choose another port: make run {other_port}"
    )


def register_commands(app: Flask) -> None:
    app.cli.add_command(event_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(reminders_cli)
    app.cli.add_command(registrations_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(privacy_cli)
    app.cli.add_command(dev_command)
